"""Spectral Relevance Analysis (SpRAy): clustering the relevance maps of one label (TP §3.3).

SpRAy (Lapuschkin et al. 2019, cited as [5] in TP) groups relevance maps that focus on the same
features, so that each group shows one strategy the network uses for a label. TP §3.3 lists its steps:
the relevance maps are pre-processed (brought to comparable size), a similarity matrix between all maps
is built, spectral clustering is applied, and the number of clusters is read off the eigenvalues that
are near or equal to zero. Here each step is one small function:

``preprocess`` → ``knn_affinity`` → ``normalized_laplacian`` → ``spectrum`` → ``eigengap_n_clusters``
→ ``spectral_embedding`` → ``kmeans``

and :func:`spray` composes them. Every step can be swapped through :class:`SpraySteps`; the eigenvalue
spectrum is kept in the :class:`SprayResult` for display.

:func:`spray_per_label` runs it once per label. For the temporal prototypes of TP §3.4,
:func:`cluster_units` runs it per action unit over the maps of all sequences: each map first goes
through one of :data:`SPRAY_INPUTS` (by default where it focuses, its top :data:`FOCUS_FRACTION` of
pixels), the maps are downscaled by :data:`DEFAULT_SPRAY_FACTOR`, and each unit gets
:func:`default_spray_k` neighbours.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.3.
.. [2] Lapuschkin et al. (2019), Unmasking Clever Hans predictors and assessing what machines really
   learn, Nature Communications 10, Methods "Spectral relevance analysis".
.. [3] Ng, Jordan and Weiss (2001), On spectral clustering: analysis and an algorithm, NIPS 14.
.. [4] von Luxburg (2007), A tutorial on spectral clustering, Statistics and Computing 17, §8.3
   (the eigengap heuristic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from numpy.typing import ArrayLike, NDArray
from sklearn.cluster import KMeans
from sklearn.neighbors import kneighbors_graph

from analysis._validation import check_shape

__all__ = [
    "DEFAULT_SPRAY_FACTOR",
    "DEFAULT_SPRAY_INPUT",
    "FOCUS_FRACTION",
    "NORMALISATIONS",
    "SPRAY_INPUTS",
    "ZERO_EIGENVALUE",
    "SprayParams",
    "SprayResult",
    "SpraySteps",
    "cluster_units",
    "default_spray_k",
    "eigengap_n_clusters",
    "kmeans",
    "knn_affinity",
    "normalized_laplacian",
    "preprocess",
    "spectral_embedding",
    "spectrum",
    "spray",
    "spray_per_label",
]

Features = NDArray[np.float64]
Normalisation = Callable[[Features], Features]


# --------------------------------------------------------------------------------------------------
# Pre-processing (TP §3.3, step 2)
# --------------------------------------------------------------------------------------------------


def _positive_int(**kwargs: Any) -> int:
    ((name, value),) = kwargs.items()
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    return int(value)


def _scale_rows(features: Features, norms: Features) -> Features:
    safe = np.where(norms > 0.0, norms, 1.0)
    return np.asarray(features / safe[:, None], dtype=np.float64)


def _normalise_none(features: Features) -> Features:
    return features.copy()


def _normalise_max_abs(features: Features) -> Features:
    return _scale_rows(features, np.abs(features).max(axis=1))


def _normalise_l2(features: Features) -> Features:
    return _scale_rows(features, np.linalg.norm(features, axis=1))


#: Per-map normalisations for :func:`preprocess`. ``"max_abs"`` maps each map into [-1, 1] as TP §3.5
#: does for display; ``"l2"`` gives unit-length maps (Euclidean distance then orders like cosine
#: distance); ``"none"`` keeps the raw relevance. An all-zero map stays all zero under each of them.
NORMALISATIONS: dict[str, Normalisation] = {
    "none": _normalise_none,
    "max_abs": _normalise_max_abs,
    "l2": _normalise_l2,
}


def _check_maps(maps: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(maps)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"maps must be a numeric array; got dtype {arr.dtype!r}.")
    if arr.ndim != 3:
        raise ValueError(
            f"maps must be a stack of 2-D relevance maps with shape (N, H, W); got shape {arr.shape!r}. "
            "Stack single maps with np.stack and sum colour relevance over its channel axis first."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"maps must hold at least one non-empty map; got shape {arr.shape!r}.")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"maps must be finite; got {int(bad.sum())} NaN or infinite values. "
            "Replace them (e.g. np.nan_to_num) before clustering."
        )
    return arr


def _area_weights(n_in: int, n_out: int) -> NDArray[np.float64]:
    """(n_out, n_in) matrix: output cell i averages the input cells it overlaps, by overlap length."""
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    starts = np.arange(n_in, dtype=np.float64)
    overlap = np.minimum(edges[1:, None], starts[None, :] + 1.0) - np.maximum(
        edges[:-1, None], starts[None, :]
    )
    weights = np.clip(overlap, 0.0, None)
    return np.asarray(weights / weights.sum(axis=1, keepdims=True), dtype=np.float64)


def _target_size(
    shape: tuple[int, int], size: tuple[int, int] | None, factor: int | None
) -> tuple[int, int] | None:
    if size is not None and factor is not None:
        raise ValueError(f"pass size or factor, not both; got size={size!r} and factor={factor!r}.")
    if size is not None:
        return check_shape(size=size)
    if factor is None:
        return None
    step = _positive_int(factor=factor)
    height, width = shape[0] // step, shape[1] // step
    if height < 1 or width < 1:
        raise ValueError(
            f"factor {factor!r} is larger than the maps ({shape[0]} × {shape[1]} px); use a smaller factor."
        )
    return height, width


def preprocess(
    maps: ArrayLike,
    *,
    size: tuple[int, int] | None = None,
    factor: int | None = None,
    normalise: str | Normalisation = "max_abs",
) -> Features:
    """Downscale and normalise relevance maps into one feature row per map (TP §3.3, pre-processing).

    Downscaling averages areas: each output pixel is the mean of the input pixels it covers, input
    pixels that straddle an output border counted by their overlap. The mean relevance of a map is
    therefore kept, and with an integer ``factor`` this is plain block averaging (a remainder of
    fewer than ``factor`` rows or columns is spread over the last block rather than dropped).

    Parameters
    ----------
    maps : array_like, shape (N, H, W)
        Relevance maps of one label, all the same size.
    size : (h, w), optional
        Output size in pixels. Mutually exclusive with ``factor``.
    factor : int, optional
        Downscaling factor; the output is ``(H // factor, W // factor)`` pixels.
    normalise : str or callable, default "max_abs"
        A key of :data:`NORMALISATIONS` or a function taking and returning an (N, D) array.
        Applied after downscaling, per map.

    Returns
    -------
    features : ndarray of float64, shape (N, h · w)
        One row per map (rows flattened in C order).

    Raises
    ------
    ValueError
        For maps that are not (N, H, W), empty or not finite; for both ``size`` and ``factor``; for an
        unknown normalisation.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3, "relevance maps are pre-processed (e.g., reshaping them into
       comparable dimensions)"; §3.5 normalisation into [-1, 1].
    .. [2] Lapuschkin et al. (2019), Methods, SpRAy step 2 (downsizing of relevance maps).
    """
    arr = _check_maps(maps)
    target = _target_size((arr.shape[1], arr.shape[2]), size, factor)
    normaliser = _resolve_normalisation(normalise)
    if target is not None and target != (arr.shape[1], arr.shape[2]):
        rows = _area_weights(arr.shape[1], target[0])
        cols = _area_weights(arr.shape[2], target[1])
        arr = np.einsum("ih,nhw,jw->nij", rows, arr, cols, optimize=True)
    features = arr.reshape(arr.shape[0], -1)
    return np.asarray(normaliser(features), dtype=np.float64)


def _resolve_normalisation(normalise: str | Normalisation) -> Normalisation:
    if callable(normalise):
        return normalise
    try:
        return NORMALISATIONS[normalise]
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"unknown normalisation {normalise!r}; expected one of {', '.join(NORMALISATIONS)} or a callable."
        ) from err


# --------------------------------------------------------------------------------------------------
# Similarity graph and its Laplacian (TP §3.3, steps 3-4)
# --------------------------------------------------------------------------------------------------


def _check_features(features: ArrayLike) -> Features:
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"features must have shape (N, D) with N >= 1; got shape {arr.shape!r}.")
    if not np.isfinite(arr).all():
        raise ValueError("features must be finite; run preprocess() on finite relevance maps.")
    return arr


def knn_affinity(features: ArrayLike, *, k: int = 10) -> Any:
    """Symmetric k-nearest-neighbour similarity graph between maps (TP §3.3, similarity matrix).

    ``A[i, j] = 1`` when map j is among the ``k`` nearest neighbours (Euclidean) of map i or map i among
    those of map j, else 0; the diagonal is 0. With fewer than ``k + 1`` maps, every map is joined to all
    others; a single map gives the 1 × 1 zero graph. Ties between equally distant maps are broken by
    index, so exact duplicates are best merged first (:func:`spray` does this).

    Parameters
    ----------
    features : array_like, shape (N, D)
        One row per map, e.g. from :func:`preprocess`.
    k : int, default 10
        Number of neighbours per map.

    Returns
    -------
    affinity : scipy.sparse.csr_matrix of float64, shape (N, N)
        Symmetric 0/1 adjacency matrix.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3, similarity matrix between every relevance map.
    .. [2] Lapuschkin et al. (2019), Methods, SpRAy step 3 (k-nearest-neighbour affinity).
    .. [3] von Luxburg (2007), §2.2, the (symmetric) k-nearest-neighbour graph.
    """
    arr = _check_features(features)
    k = _positive_int(k=k)
    n = arr.shape[0]
    if n == 1:
        return scipy.sparse.csr_matrix((1, 1), dtype=np.float64)
    # include_self=False leaves each map out of its own neighbours, so the diagonal stays 0.
    graph = kneighbors_graph(arr, n_neighbors=min(k, n - 1), mode="connectivity", include_self=False)
    return graph.maximum(graph.T).tocsr().astype(np.float64)


def normalized_laplacian(affinity: Any) -> Any:
    """Symmetric normalised graph Laplacian ``L = I − D^(−1/2) A D^(−1/2)`` (TP §3.3, spectral clustering).

    Its eigenvalues lie in [0, 2]; eigenvalue 0 has the multiplicity of the number of connected
    components. A map with no edges (zero degree) gets a zero row and column, i.e. its own component.

    Parameters
    ----------
    affinity : array_like or scipy.sparse matrix, shape (N, N)
        Symmetric non-negative similarity matrix, e.g. from :func:`knn_affinity`.

    Returns
    -------
    laplacian : scipy.sparse.csr_matrix or ndarray of float64, shape (N, N)
        Sparse when ``affinity`` is sparse.

    Raises
    ------
    ValueError
        For a non-square, asymmetric, negative or non-finite affinity.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3.
    .. [2] von Luxburg (2007), §3.2, L_sym; Ng, Jordan and Weiss (2001).
    """
    sparse = scipy.sparse.issparse(affinity)
    mat: Any = scipy.sparse.csr_matrix(affinity, dtype=np.float64) if sparse else np.asarray(affinity, float)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] == 0:
        raise ValueError(f"affinity must be a square (N, N) matrix with N >= 1; got shape {mat.shape!r}.")
    values = np.asarray(mat.data if sparse else mat)
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("affinity must be finite and non-negative.")
    if abs(mat - mat.T).max() > 1e-12:
        raise ValueError("affinity must be symmetric; symmetrise it first, e.g. A.maximum(A.T).")
    laplacian = scipy.sparse.csgraph.laplacian(mat, normed=True)
    return laplacian.tocsr() if sparse else np.asarray(laplacian, dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Spectrum and number of clusters (TP §3.3, "Eigen-values near or equal to zero")
# --------------------------------------------------------------------------------------------------


def _component_spectrum(
    block: Any, n: int, dense_max_n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    size = block.shape[0]
    if size <= max(dense_max_n, n + 1):
        dense = block.toarray() if scipy.sparse.issparse(block) else np.asarray(block)
        return scipy.linalg.eigh(dense, subset_by_index=[0, min(n, size) - 1])  # type: ignore[no-any-return]
    # Shift-invert just below 0 converges to the smallest eigenvalues; a fixed start vector keeps
    # the result deterministic.
    start = np.sin(np.arange(1, size + 1, dtype=np.float64))
    values, vectors = scipy.sparse.linalg.eigsh(
        scipy.sparse.csc_matrix(block), k=n, sigma=-1e-3, which="LM", v0=start
    )
    return values, vectors


def spectrum(
    laplacian: Any, *, n_eigenvalues: int = 20, dense_max_n: int = 2000
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The smallest eigenvalues of a graph Laplacian and their eigenvectors (TP §3.3).

    The graph is split into its connected components first and each component solved on its own, so
    that eigenvalue 0 appears exactly once per component; a component is solved densely
    (``scipy.linalg.eigh``) up to ``dense_max_n`` maps, else by sparse shift-invert Lanczos
    (``scipy.sparse.linalg.eigsh``). Eigenvectors are zero outside their component.

    Parameters
    ----------
    laplacian : array_like or scipy.sparse matrix, shape (N, N)
        Symmetric Laplacian, e.g. from :func:`normalized_laplacian`.
    n_eigenvalues : int, default 20
        How many of the smallest eigenvalues to return; fewer when N is smaller.
    dense_max_n : int, default 2000
        Largest component solved with a dense eigensolver.

    Returns
    -------
    eigenvalues : ndarray of float64, shape (m,)
        Sorted ascending, ``m = min(n_eigenvalues, N)``; rounding below 0 is clipped to 0.
    eigenvectors : ndarray of float64, shape (N, m)
        Column j belongs to ``eigenvalues[j]``.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3, the eigenvalues that determine the number of clusters.
    .. [2] von Luxburg (2007), Proposition 4: multiplicity of eigenvalue 0 = number of components.
    """
    n_eigenvalues = _positive_int(n_eigenvalues=n_eigenvalues)
    mat = scipy.sparse.csr_matrix(laplacian, dtype=np.float64)
    size = mat.shape[0]
    if mat.ndim != 2 or size != mat.shape[1] or size == 0:
        raise ValueError(f"laplacian must be a square (N, N) matrix with N >= 1; got shape {mat.shape!r}.")
    m = min(n_eigenvalues, size)
    _, component = scipy.sparse.csgraph.connected_components(mat, directed=False)
    all_values: list[NDArray[np.float64]] = []
    all_vectors: list[NDArray[np.float64]] = []
    for label in np.unique(component):
        members = np.flatnonzero(component == label)
        block = mat[members][:, members]
        values, vectors = _component_spectrum(block, min(m, members.size), int(dense_max_n))
        padded = np.zeros((size, values.size))
        padded[members] = vectors
        all_values.append(values)
        all_vectors.append(padded)
    values = np.clip(np.concatenate(all_values), 0.0, None)  # L is positive semi-definite
    order = np.argsort(values, kind="stable")[:m]
    return values[order], np.concatenate(all_vectors, axis=1)[:, order]


#: Eigenvalues of the normalised Laplacian up to this count as zero in :func:`eigengap_n_clusters`:
#: one per connected component of the similarity graph (:func:`spectrum` solves each component on
#: its own, dense solves give about 1e-16, shift-invert Lanczos about 1e-12).
ZERO_EIGENVALUE = 1e-8


def eigengap_n_clusters(eigenvalues: ArrayLike, *, max_clusters: int = 10) -> int:
    """Number of clusters from the eigenvalues near or equal to zero (TP §3.3).

    With ascending eigenvalues λ₁ ≤ λ₂ ≤ …: when c ≥ 2 of them are zero (≤ :data:`ZERO_EIGENVALUE`),
    the similarity graph falls into c connected components, and the answer is c (at most
    ``max_clusters``). Otherwise it is the n ≤ ``max_clusters`` that maximises λₙ₊₁ − λₙ (the eigengap
    heuristic): the eigenvalues "near zero" are those before the largest gap. A single eigenvalue
    gives 1; ties go to the smaller n.

    Components come first because the gap heuristic can look past them: the shipped AU model's
    AU12 maps of one draw fell into two components, the two planted strategies, with the spectrum
    0, 0, 0.28, 0.37, 0.78; the largest gap follows the fourth eigenvalue and split each strategy in
    two (adjusted Rand index 0.50 instead of 1.0; issue 12).

    Parameters
    ----------
    eigenvalues : array_like, shape (m,)
        Smallest eigenvalues of the Laplacian, ascending, e.g. from :func:`spectrum`.
    max_clusters : int, default 10
        Largest number of clusters considered.

    Returns
    -------
    n_clusters : int
        Between 1 and ``min(max_clusters, m - 1)`` (1 when m = 1).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3, "the number of clusters is determined by Eigen-values near or
       equal to zero in accordance to the method presented in [5]".
    .. [2] von Luxburg (2007), §8.3, the eigengap heuristic.
    """
    values = np.asarray(eigenvalues, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"eigenvalues must be a non-empty finite 1-D array; got shape {values.shape!r}.")
    if (np.diff(values) < 0).any():
        raise ValueError("eigenvalues must be sorted ascending, as spectrum() returns them.")
    top = min(_positive_int(max_clusters=max_clusters), values.size - 1)
    if top < 1:
        return 1
    components = int(np.count_nonzero(values[: top + 1] <= ZERO_EIGENVALUE))
    if components >= 2:
        return min(components, top)
    return int(np.argmax(np.diff(values[: top + 1]))) + 1


# --------------------------------------------------------------------------------------------------
# Embedding and k-means (TP §3.3, spectral clustering)
# --------------------------------------------------------------------------------------------------


def spectral_embedding(eigenvectors: ArrayLike, *, n_clusters: int) -> Features:
    """Rows of the first ``n_clusters`` eigenvectors, scaled to unit length (Ng-Jordan-Weiss).

    A row of zeros stays zero.

    Parameters
    ----------
    eigenvectors : array_like, shape (N, m)
        Eigenvectors of L_sym for the ascending eigenvalues, e.g. from :func:`spectrum`.
    n_clusters : int
        Number of leading eigenvectors to keep, at most m.

    Returns
    -------
    embedding : ndarray of float64, shape (N, n_clusters)

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3; Ng, Jordan and Weiss (2001), steps 3-4.
    """
    vectors = np.asarray(eigenvectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"eigenvectors must have shape (N, m); got shape {vectors.shape!r}.")
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise TypeError(f"n_clusters must be an integer; got {n_clusters!r}.")
    if not 1 <= n_clusters <= vectors.shape[1]:
        raise ValueError(
            f"n_clusters must lie between 1 and the {vectors.shape[1]} eigenvectors given; "
            f"got {n_clusters!r}."
        )
    head = vectors[:, : int(n_clusters)]
    return _scale_rows(head, np.linalg.norm(head, axis=1))


def _first_appearance_order(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(labels.max() + 1, dtype=np.int64)
    rank[labels[np.sort(first)]] = np.arange(first.size)
    return rank[labels]


def kmeans(embedding: ArrayLike, *, n_clusters: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """k-means on the spectral embedding; clusters numbered in order of first appearance.

    Cluster 0 is the cluster of the first map, cluster 1 that of the first map not in cluster 0, and
    so on, so the numbering does not depend on k-means' internal order. ``n_clusters == 1`` gives all
    zeros without running k-means.

    Parameters
    ----------
    embedding : array_like, shape (N, d)
        Spectral embedding, e.g. from :func:`spectral_embedding`.
    n_clusters : int
        Number of clusters, between 1 and N.
    rng : numpy.random.Generator
        Seeds scikit-learn's ``KMeans`` (10 initialisations).

    Returns
    -------
    labels : ndarray of int64, shape (N,)

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3; Ng, Jordan and Weiss (2001), step 5.
    """
    points = np.asarray(embedding, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] == 0 or not np.isfinite(points).all():
        raise ValueError(f"embedding must be a finite (N, d) array with N >= 1; got shape {points.shape!r}.")
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise TypeError(f"n_clusters must be an integer; got {n_clusters!r}.")
    if not 1 <= n_clusters <= points.shape[0]:
        raise ValueError(f"n_clusters must lie between 1 and {points.shape[0]} maps; got {n_clusters!r}.")
    if n_clusters == 1:
        return np.zeros(points.shape[0], dtype=np.int64)
    seed = int(rng.integers(0, 2**31 - 1))
    raw = KMeans(n_clusters=int(n_clusters), n_init=10, random_state=seed).fit_predict(points)
    return _first_appearance_order(np.asarray(raw, dtype=np.int64))


# --------------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------------


class Preprocessor(Protocol):
    def __call__(
        self,
        maps: ArrayLike,
        *,
        size: tuple[int, int] | None,
        factor: int | None,
        normalise: str | Normalisation,
    ) -> Features: ...


class Affinity(Protocol):
    def __call__(self, features: ArrayLike, *, k: int) -> Any: ...


class Spectrum(Protocol):
    def __call__(
        self, laplacian: Any, *, n_eigenvalues: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


class ClusterCount(Protocol):
    def __call__(self, eigenvalues: ArrayLike, *, max_clusters: int) -> int: ...


class Embedding(Protocol):
    def __call__(self, eigenvectors: ArrayLike, *, n_clusters: int) -> Features: ...


class Clusterer(Protocol):
    def __call__(
        self, embedding: ArrayLike, *, n_clusters: int, rng: np.random.Generator
    ) -> NDArray[np.int64]: ...


@dataclass(frozen=True, slots=True)
class SpraySteps:
    """The swappable steps of :func:`spray`; each field defaults to this module's function.

    Replace one with :func:`dataclasses.replace`, e.g. ``SpraySteps(affinity=my_affinity)``. A
    replacement takes the same arguments as the function it replaces (keyword names included).
    """

    preprocess: Preprocessor = preprocess
    affinity: Affinity = knn_affinity
    laplacian: Callable[[Any], Any] = normalized_laplacian
    spectrum: Spectrum = spectrum
    n_clusters: ClusterCount = eigengap_n_clusters
    embedding: Embedding = spectral_embedding
    cluster: Clusterer = kmeans


@dataclass(frozen=True, slots=True)
class SprayParams:
    """The options a :func:`spray` run used (``n_clusters`` is None when the eigengap chose it)."""

    size: tuple[int, int] | None
    factor: int | None
    normalise: str
    k: int
    max_clusters: int
    n_eigenvalues: int
    n_clusters: int | None


@dataclass(frozen=True, slots=True, eq=False)
class SprayResult:
    """Outcome of :func:`spray` for one label's relevance maps (TP §3.3).

    The arrays are read-only copies; results compare by identity (``eq=False``).

    Attributes
    ----------
    labels : ndarray of int64, shape (N,)
        Cluster of each map, numbered 0, 1, … in order of first appearance among the maps.
    n_clusters : int
        Number of clusters (from the eigengap unless given).
    eigenvalues : ndarray of float64, shape (m,)
        Smallest eigenvalues of the Laplacian of the graph over the distinct maps, ascending (for
        display: the clusters are the eigenvalues before the largest gap).
    embedding : ndarray of float64, shape (N, n_clusters)
        Spectral embedding of each map.
    params : SprayParams
        The options used.
    n_distinct : int
        Number of distinct feature rows after pre-processing (exact duplicates merged).
    """

    labels: NDArray[np.int64]
    n_clusters: int
    eigenvalues: NDArray[np.float64]
    embedding: NDArray[np.float64]
    params: SprayParams
    n_distinct: int

    def __post_init__(self) -> None:
        for name in ("labels", "eigenvalues", "embedding"):
            frozen = np.array(getattr(self, name), copy=True)
            frozen.setflags(write=False)
            object.__setattr__(self, name, frozen)


def spray(
    maps: ArrayLike,
    *,
    rng: np.random.Generator,
    size: tuple[int, int] | None = None,
    factor: int | None = None,
    normalise: str | Normalisation = "max_abs",
    k: int = 10,
    max_clusters: int = 10,
    n_eigenvalues: int = 20,
    n_clusters: int | None = None,
    steps: SpraySteps = SpraySteps(),
) -> SprayResult:
    """Cluster the relevance maps of one label with Spectral Relevance Analysis (TP §3.3).

    ``steps.preprocess`` → exact duplicates merged → ``steps.affinity`` → ``steps.laplacian`` →
    ``steps.spectrum`` → ``steps.n_clusters`` (skipped when ``n_clusters`` is given) →
    ``steps.embedding`` → ``steps.cluster``. Maps that are identical after pre-processing are clustered
    as one point and share its cluster: a k-nearest-neighbour graph among identical points would
    depend on how ties are broken. Hence identical maps always form one cluster, and a single map
    gives one cluster with eigenvalues ``[0]``.

    Parameters
    ----------
    maps : array_like, shape (N, H, W)
        Relevance maps of one label (one per frame in which the label is active).
    rng : numpy.random.Generator
        Source of randomness for k-means.
    size, factor, normalise
        Passed to ``steps.preprocess`` (see :func:`preprocess`).
    k : int, default 10
        Neighbours per map in the similarity graph (see :func:`knn_affinity`).
    max_clusters : int, default 10
        Largest number of clusters the eigengap may choose.
    n_eigenvalues : int, default 20
        Eigenvalues kept for display; raised to ``max_clusters + 1`` (and to ``n_clusters``) when smaller.
    n_clusters : int, optional
        Force this number of clusters instead of the eigengap's choice (at most the number of distinct
        maps).

    steps : SpraySteps, optional
        The step functions; the defaults are this module's functions.

    Returns
    -------
    SprayResult

    Raises
    ------
    ValueError
        For maps that are not a finite (N, H, W) stack, option values below 1, or ``n_clusters`` above
        the number of distinct maps.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3, the five steps of SpRAy.
    .. [2] Lapuschkin et al. (2019), Methods, "Spectral relevance analysis".
    """
    k = _positive_int(k=k)
    max_clusters = _positive_int(max_clusters=max_clusters)
    n_eigenvalues = max(_positive_int(n_eigenvalues=n_eigenvalues), max_clusters + 1)
    if n_clusters is not None:
        n_eigenvalues = max(n_eigenvalues, _positive_int(n_clusters=n_clusters))
    features = steps.preprocess(maps, size=size, factor=factor, normalise=normalise)
    distinct, inverse = np.unique(features, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if n_clusters is not None and n_clusters > distinct.shape[0]:
        raise ValueError(
            f"n_clusters={n_clusters!r} exceeds the {distinct.shape[0]} distinct maps; "
            "ask for fewer clusters."
        )
    laplacian = steps.laplacian(steps.affinity(distinct, k=k))
    eigenvalues, eigenvectors = steps.spectrum(laplacian, n_eigenvalues=n_eigenvalues)
    chosen = (
        n_clusters if n_clusters is not None else steps.n_clusters(eigenvalues, max_clusters=max_clusters)
    )
    embedding = steps.embedding(eigenvectors, n_clusters=chosen)
    labels = steps.cluster(embedding, n_clusters=chosen, rng=rng)[inverse]
    params = SprayParams(
        size=size,
        factor=factor,
        normalise=normalise
        if isinstance(normalise, str)
        else getattr(normalise, "__name__", repr(normalise)),
        k=k,
        max_clusters=max_clusters,
        n_eigenvalues=n_eigenvalues,
        n_clusters=n_clusters,
    )
    return SprayResult(
        labels=_first_appearance_order(np.asarray(labels, dtype=np.int64)),
        n_clusters=int(chosen),
        eigenvalues=np.asarray(eigenvalues, dtype=np.float64),
        embedding=np.asarray(embedding, dtype=np.float64)[inverse],
        params=params,
        n_distinct=int(distinct.shape[0]),
    )


def spray_per_label(
    maps_by_label: Mapping[str, ArrayLike], *, rng: np.random.Generator, **options: Any
) -> dict[str, SprayResult]:
    """Run :func:`spray` separately for each label (TP §3.3-3.4: clusters are formed per Action Unit).

    Each label gets its own child generator (``rng.spawn``), so adding a label does not change the
    clusters of the others.

    Parameters
    ----------
    maps_by_label : mapping of str to array_like (N_label, H, W)
        The relevance maps of each label, in frame order.
    rng : numpy.random.Generator
    **options
        Keyword options of :func:`spray`.

    Returns
    -------
    dict of str to SprayResult
        In the order of ``maps_by_label``.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, "Action Unit-wise spectral clustering" (Table 1).
    """
    children = rng.spawn(len(maps_by_label))
    return {
        label: spray(maps, rng=child, **options)
        for (label, maps), child in zip(maps_by_label.items(), children, strict=True)
    }


# --------------------------------------------------------------------------------------------------
# SpRAy per action unit over the maps of many sequences (TP §3.3)
# --------------------------------------------------------------------------------------------------

#: SpRAy downscaling factor of :func:`cluster_units`: 48 × 48 maps become 8 × 8 before clustering
#: (TP §3.3, pre-processing).
#: At 6 × 6 (factor 8) one cell spans the whole lip corner, and the two planted AU12 strategies, whose
#: relevance lies 3-5 px apart, fall into the same cells.
DEFAULT_SPRAY_FACTOR = 6
#: Share of the pixels of each map that :data:`SPRAY_INPUTS` ``["focus"]`` keeps (TP §3.5, Top-X).
FOCUS_FRACTION = 0.05
#: The default SpRAy input (a key of :data:`SPRAY_INPUTS`).
DEFAULT_SPRAY_INPUT = "focus"


def default_spray_k(maps_per_sequence: Sequence[int]) -> int:
    """Neighbours per map for SpRAy over sequences: ``max(10, 3 · median maps per sequence, ⌈N / 4⌉)``.

    Consecutive frames of one sequence give nearly identical maps. With fewer neighbours than a
    sequence has maps, each sequence becomes its own part of the similarity graph and the eigengap
    counts sequences (or groups of similar faces) instead of strategies; three times the typical count
    joins every map to other sequences. ``⌈N / 4⌉`` neighbours among N maps still separate up to about
    four strategies of similar size, while smaller groups of similar faces merge.

    Parameters
    ----------
    maps_per_sequence : sequence of int
        Number of maps of the unit in each sequence where it is active (zeros are ignored).

    Returns
    -------
    int

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3 (similarity matrix); von Luxburg (2007), §8.1 (choice of k).
    """
    counts = [int(c) for c in maps_per_sequence if int(c) > 0]
    if not counts:
        return 10
    return max(10, 3 * int(np.ceil(np.median(counts))), int(np.ceil(sum(counts) / 4)))


def _magnitude(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.abs(maps)


def _signed(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    return maps


def _positive(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.clip(maps, 0.0, None)


def _focus(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 on the top :data:`FOCUS_FRACTION` of each map's pixels by ``|R|``, 0 elsewhere (ties kept)."""
    flat = np.abs(maps).reshape(len(maps), -1)
    if flat.shape[1] == 0:
        return np.zeros_like(maps)
    cut = np.quantile(flat, 1.0 - FOCUS_FRACTION, axis=1, keepdims=True)
    focus: NDArray[np.float64] = ((flat >= cut) & (flat > 0)).reshape(maps.shape).astype(np.float64)
    return focus


#: What SpRAy clusters of each relevance map (TP §3.3, pre-processing). ``"focus"`` (default): where
#: the network looks, the top :data:`FOCUS_FRACTION` of the pixels by ``|R|`` as a binary map (TP §3.5's
#: Top-X). How strongly it looks there changes with the face (skin and background contrast) and with
#: the frame (an action's onset ramp), and with ``|R|`` those changes outweighed the 3-5 px between the
#: two planted AU12 strategies on some training runs; the focus keeps only the place. ``"magnitude"``:
#: ``|R|``, whatever the sign. ``"signed"``: the maps as they are (the sign of weak evidence elsewhere in
#: the face varies between faces and splits one strategy into several); ``"positive"``: only evidence
#: for the unit (negative relevance removed, as in TP §3.5).
SPRAY_INPUTS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "focus": _focus,
    "magnitude": _magnitude,
    "signed": _signed,
    "positive": _positive,
}


def cluster_units(
    relevance_by_unit: Mapping[str, ArrayLike],
    *,
    rng: np.random.Generator,
    maps_per_sequence: Mapping[str, Sequence[int]] | None = None,
    factor: int = DEFAULT_SPRAY_FACTOR,
    k: int | None = None,
    max_clusters: int = 10,
    spray_input: str = DEFAULT_SPRAY_INPUT,
) -> dict[str, SprayResult]:
    """SpRAy per unit over the maps of all sequences (TP §3.3: clusters are formed per Action Unit).

    Each unit's maps go through :data:`SPRAY_INPUTS` ``[spray_input]``, then
    :func:`analysis.spray.spray` (downscaled by ``factor``, L2-normalised, ``k`` neighbours, eigengap).

    Parameters
    ----------
    relevance_by_unit : mapping of str to array_like (n_u, H, W)
        Each unit's maps, e.g. concatenated over sequences from
        :func:`analysis.unit_relevance.unit_relevance`.
    rng : numpy.random.Generator
        Each unit gets its own child generator (as :func:`analysis.spray.spray_per_label`).
    maps_per_sequence : mapping of str to sequence of int, optional
        How many of each unit's maps come from each sequence, for :func:`default_spray_k`.
    factor : int, default 6
        Downscaling factor of :func:`analysis.spray.preprocess`.
    k : int, optional
        Neighbours per map; default :func:`default_spray_k` per unit.
    max_clusters : int, default 10
    spray_input : str, default "focus"
        A key of :data:`SPRAY_INPUTS`.

    Returns
    -------
    dict of str to SprayResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3 ("similar relevance maps most likely focus on the same
       features"), §3.4.
    """
    try:
        transform = SPRAY_INPUTS[spray_input]
    except KeyError as err:
        raise ValueError(
            f"unknown spray_input {spray_input!r}; expected one of {', '.join(SPRAY_INPUTS)}."
        ) from err
    children = rng.spawn(len(relevance_by_unit))
    results = {}
    for (unit, maps), child in zip(relevance_by_unit.items(), children, strict=True):
        counts = (maps_per_sequence or {}).get(unit, [np.shape(maps)[0]])
        neighbours = default_spray_k(counts) if k is None else k
        features = transform(np.asarray(maps, dtype=np.float64))
        results[unit] = spray(
            features, rng=child, factor=factor, normalise="l2", k=neighbours, max_clusters=max_clusters
        )
    return results
