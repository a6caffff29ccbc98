from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import adjusted_rand_score

from analysis.spray import (
    FOCUS_FRACTION,
    NORMALISATIONS,
    SPRAY_INPUTS,
    SprayResult,
    SpraySteps,
    default_spray_k,
    eigengap_n_clusters,
    kmeans,
    knn_affinity,
    normalized_laplacian,
    preprocess,
    spectral_embedding,
    spectrum,
    spray,
    spray_per_label,
)

# --------------------------------------------------------------------------------------------------
# Synthetic relevance maps with planted strategies
# --------------------------------------------------------------------------------------------------

CENTRES = ((8.0, 8.0), (24.0, 22.0), (8.0, 26.0))  # (x, y) of each planted strategy's blob


def planted_maps(
    strategies: NDArray[np.int64], rng: np.random.Generator, *, size: int = 32, noise: float = 0.15
) -> NDArray[np.float64]:
    """One map per entry: a Gaussian blob at the strategy's location, random gain, plus noise."""
    rows, cols = np.mgrid[:size, :size].astype(float)
    maps = np.empty((strategies.size, size, size))
    for index, strategy in enumerate(strategies):
        x, y = CENTRES[strategy]
        blob = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 3.0**2))
        maps[index] = rng.uniform(0.5, 2.0) * blob + rng.normal(0.0, noise, (size, size))
    return maps


# --------------------------------------------------------------------------------------------------
# Slow reference implementations
# --------------------------------------------------------------------------------------------------


def reference_area_resize(image: NDArray[np.float64], height: int, width: int) -> NDArray[np.float64]:
    """Each output pixel: overlap-weighted mean of the input pixels under its rectangle."""
    in_h, in_w = image.shape
    sy, sx = in_h / height, in_w / width
    out = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            total = 0.0
            for r in range(in_h):
                for c in range(in_w):
                    oy = max(0.0, min((i + 1) * sy, r + 1) - max(i * sy, r))
                    ox = max(0.0, min((j + 1) * sx, c + 1) - max(j * sx, c))
                    total += oy * ox * image[r, c]
            out[i, j] = total / (sy * sx)
    return out


def reference_knn(features: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    n = features.shape[0]
    k = min(k, n - 1)
    adjacency = np.zeros((n, n))
    for i in range(n):
        distances = [(float(np.linalg.norm(features[i] - features[j])), j) for j in range(n) if j != i]
        for _, j in sorted(distances)[:k]:
            adjacency[i, j] = adjacency[j, i] = 1.0
    return adjacency


def reference_laplacian(adjacency: NDArray[np.float64]) -> NDArray[np.float64]:
    n = adjacency.shape[0]
    laplacian = np.zeros((n, n))
    degree = adjacency.sum(axis=1)
    for i in range(n):
        for j in range(n):
            if degree[i] == 0 or degree[j] == 0:
                continue
            laplacian[i, j] = (i == j) - adjacency[i, j] / np.sqrt(degree[i] * degree[j])
    return laplacian


def block_graph(sizes: tuple[int, ...]) -> NDArray[np.float64]:
    """Disjoint cliques of the given sizes."""
    n = sum(sizes)
    adjacency = np.zeros((n, n))
    start = 0
    for size in sizes:
        adjacency[start : start + size, start : start + size] = 1.0
        start += size
    np.fill_diagonal(adjacency, 0.0)
    return adjacency


# --------------------------------------------------------------------------------------------------
# preprocess
# --------------------------------------------------------------------------------------------------


def test_integer_factor_is_block_averaging(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(3, 12, 8))
    features = preprocess(maps, factor=4, normalise="none")
    expected = np.stack(
        [
            [[maps[n, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean() for j in range(2)] for i in range(3)]
            for n in range(3)
        ]
    )
    np.testing.assert_allclose(features, expected.reshape(3, -1))


def test_non_integer_size_matches_the_overlap_reference(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(2, 7, 5))
    features = preprocess(maps, size=(3, 2), normalise="none")
    for n in range(2):
        np.testing.assert_allclose(features[n], reference_area_resize(maps[n], 3, 2).ravel())


def test_factor_with_remainder_spreads_it_over_the_last_block(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(1, 10, 10))
    np.testing.assert_allclose(
        preprocess(maps, factor=3, normalise="none")[0], reference_area_resize(maps[0], 3, 3).ravel()
    )


@given(
    arrays(np.float64, (2, 9, 6), elements=st.floats(-5, 5)),
    st.integers(1, 9),
    st.integers(1, 6),
)
def test_downscaling_keeps_the_mean_relevance(maps: NDArray[np.float64], height: int, width: int) -> None:
    features = preprocess(maps, size=(height, width), normalise="none")
    np.testing.assert_allclose(features.mean(axis=1), maps.mean(axis=(1, 2)), atol=1e-9)


def test_no_resizing_without_size_or_factor(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(4, 5, 6))
    np.testing.assert_array_equal(preprocess(maps, normalise="none"), maps.reshape(4, -1))


def test_normalisations(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(5, 4, 4)) * np.array([1.0, 3.0, 0.1, 10.0, 0.0])[:, None, None]
    max_abs = preprocess(maps, normalise="max_abs")
    l2 = preprocess(maps, normalise="l2")
    np.testing.assert_allclose(np.abs(max_abs).max(axis=1), [1, 1, 1, 1, 0])
    np.testing.assert_allclose(np.linalg.norm(l2, axis=1), [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(max_abs[4], 0.0)
    for name in NORMALISATIONS:
        assert preprocess(maps, normalise=name).shape == (5, 16)
    doubled = preprocess(maps, normalise=lambda f: 2 * f)
    np.testing.assert_allclose(doubled, 2 * maps.reshape(5, -1))


def test_preprocess_does_not_change_its_input(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(3, 6, 6))
    before = maps.copy()
    preprocess(maps, factor=2, normalise="l2")
    np.testing.assert_array_equal(maps, before)


@pytest.mark.parametrize(
    ("maps", "options", "message"),
    [
        (np.zeros((4, 4)), {}, r"\(N, H, W\)"),
        (np.zeros((0, 4, 4)), {}, "at least one"),
        (np.full((1, 2, 2), np.nan), {}, "finite"),
        (np.zeros((1, 4, 4)), {"size": (2, 2), "factor": 2}, "not both"),
        (np.zeros((1, 4, 4)), {"factor": 5}, "smaller factor"),
        (np.zeros((1, 4, 4)), {"factor": 0}, "factor"),
        (np.zeros((1, 4, 4)), {"size": (0, 2)}, "positive"),
        (np.zeros((1, 4, 4)), {"normalise": "unit"}, "max_abs"),
    ],
)
def test_preprocess_rejects_bad_arguments(
    maps: NDArray[np.float64], options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess(maps, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Graph and Laplacian
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_knn_affinity_matches_the_reference(rng: np.random.Generator, k: int) -> None:
    features = rng.normal(size=(25, 6))
    affinity = knn_affinity(features, k=k)
    assert scipy.sparse.issparse(affinity)
    np.testing.assert_array_equal(affinity.toarray(), reference_knn(features, k))


def test_knn_affinity_degenerate_sizes() -> None:
    assert knn_affinity(np.zeros((1, 3)), k=5).toarray().tolist() == [[0.0]]
    few = knn_affinity(np.arange(12.0).reshape(4, 3), k=10).toarray()
    np.testing.assert_array_equal(few, 1 - np.eye(4))  # fewer maps than k: all joined
    with pytest.raises(ValueError, match="k must be"):
        knn_affinity(np.zeros((3, 2)), k=0)


def test_laplacian_matches_the_reference(rng: np.random.Generator) -> None:
    adjacency = reference_knn(rng.normal(size=(15, 3)), 3)
    adjacency[4, :] = adjacency[:, 4] = 0.0  # an isolated map
    sparse = normalized_laplacian(scipy.sparse.csr_matrix(adjacency))
    dense = normalized_laplacian(adjacency)
    np.testing.assert_allclose(sparse.toarray(), reference_laplacian(adjacency), atol=1e-12)
    np.testing.assert_allclose(dense, reference_laplacian(adjacency), atol=1e-12)


def test_laplacian_rejects_asymmetric_or_negative_affinity() -> None:
    with pytest.raises(ValueError, match="symmetric"):
        normalized_laplacian(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        normalized_laplacian(np.array([[0.0, -1.0], [-1.0, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        normalized_laplacian(np.zeros((2, 3)))


# --------------------------------------------------------------------------------------------------
# Spectrum and eigengap
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dense_max_n", [0, 10_000])
def test_spectrum_matches_numpy_and_eigenpairs_hold(rng: np.random.Generator, dense_max_n: int) -> None:
    adjacency = reference_knn(rng.normal(size=(60, 4)), 4)
    laplacian = normalized_laplacian(scipy.sparse.csr_matrix(adjacency))
    values, vectors = spectrum(laplacian, n_eigenvalues=8, dense_max_n=dense_max_n)
    expected = np.clip(np.linalg.eigvalsh(reference_laplacian(adjacency))[:8], 0, None)
    np.testing.assert_allclose(values, expected, atol=1e-8)
    np.testing.assert_allclose(laplacian @ vectors, vectors * values, atol=1e-6)


@pytest.mark.parametrize("dense_max_n", [0, 10_000])
def test_zero_eigenvalue_multiplicity_is_the_number_of_components(dense_max_n: int) -> None:
    laplacian = normalized_laplacian(scipy.sparse.csr_matrix(block_graph((5, 8, 4, 6))))
    values, vectors = spectrum(laplacian, n_eigenvalues=6, dense_max_n=dense_max_n)
    np.testing.assert_allclose(values[:4], 0.0, atol=1e-10)
    assert values[4] > 1.0  # clique K_m has eigenvalue m / (m - 1)
    assert eigengap_n_clusters(values, max_clusters=5) == 4
    assert np.linalg.matrix_rank(vectors[:, :4]) == 4


def test_spectrum_of_a_single_map() -> None:
    values, vectors = spectrum(np.zeros((1, 1)), n_eigenvalues=5)
    assert values.tolist() == [0.0] and vectors.shape == (1, 1)


@pytest.mark.parametrize(
    ("eigenvalues", "max_clusters", "expected"),
    [
        ([0.0], 10, 1),
        ([0.0, 0.9, 0.95, 1.0], 10, 1),
        ([0.0, 0.0, 0.8, 0.9], 10, 2),
        ([0.0, 0.01, 0.02, 0.7, 0.75], 10, 3),
        ([0.0, 0.01, 0.02, 0.7, 0.75], 2, 1),  # the gap after 3 is out of reach
        ([0.0, 0.5, 1.0, 1.5], 10, 1),  # ties go to the smaller n
        # Issue 12: two components, each split once more; the largest gap (after the fourth) is
        # not taken, the components are the clusters.
        ([0.0, 0.0, 0.284, 0.371, 0.781, 0.854], 10, 2),
        ([0.0, 1e-12, 0.5, 0.6], 10, 2),  # a Lanczos zero
        ([0.0, 0.0, 0.0, 0.5], 2, 2),  # more components than max_clusters
    ],
)
def test_eigengap(eigenvalues: list[float], max_clusters: int, expected: int) -> None:
    assert eigengap_n_clusters(eigenvalues, max_clusters=max_clusters) == expected


def test_eigengap_rejects_unsorted_values() -> None:
    with pytest.raises(ValueError, match="ascending"):
        eigengap_n_clusters([0.5, 0.0])
    with pytest.raises(ValueError, match="max_clusters"):
        eigengap_n_clusters([0.0, 1.0], max_clusters=0)


@given(st.lists(st.floats(0, 2), min_size=1, max_size=15), st.integers(1, 12))
def test_eigengap_stays_in_range(values: list[float], max_clusters: int) -> None:
    n = eigengap_n_clusters(sorted(values), max_clusters=max_clusters)
    assert 1 <= n <= max(1, min(max_clusters, len(values) - 1))


# --------------------------------------------------------------------------------------------------
# Embedding and k-means
# --------------------------------------------------------------------------------------------------


def test_embedding_rows_have_unit_length(rng: np.random.Generator) -> None:
    vectors = rng.normal(size=(10, 4))
    vectors[3] = 0.0
    embedding = spectral_embedding(vectors, n_clusters=3)
    assert embedding.shape == (10, 3)
    norms = np.linalg.norm(embedding, axis=1)
    np.testing.assert_allclose(np.delete(norms, 3), 1.0)
    assert norms[3] == 0.0
    with pytest.raises(ValueError, match="between 1 and the 4"):
        spectral_embedding(vectors, n_clusters=5)


def test_kmeans_numbers_clusters_by_first_appearance(rng: np.random.Generator) -> None:
    points = np.array([[5.0, 5.0], [0.0, 0.0], [5.1, 5.0], [9.0, 0.0], [0.1, 0.0], [9.0, 0.1]])
    labels = kmeans(points, n_clusters=3, rng=rng)
    assert labels.tolist() == [0, 1, 0, 2, 1, 2]
    assert kmeans(points, n_clusters=1, rng=rng).tolist() == [0] * 6


# --------------------------------------------------------------------------------------------------
# spray: the composition
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_strategies", [2, 3])
def test_spray_recovers_planted_strategies(rng: np.random.Generator, n_strategies: int) -> None:
    truth = rng.permutation(np.arange(60) % n_strategies)
    result = spray(planted_maps(truth, rng), factor=2, rng=rng)
    assert result.n_clusters == n_strategies
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    assert result.labels[0] == 0
    assert result.embedding.shape == (60, n_strategies)
    assert result.eigenvalues.shape == (20,)
    assert np.all(np.diff(result.eigenvalues) >= 0)
    gaps = np.diff(result.eigenvalues[:11])
    assert int(np.argmax(gaps)) + 1 == n_strategies


def test_spray_finds_one_cluster_in_one_strategy(rng: np.random.Generator) -> None:
    result = spray(planted_maps(np.zeros(40, dtype=np.int64), rng), factor=2, rng=rng)
    assert result.n_clusters == 1
    assert set(result.labels.tolist()) == {0}


def test_spray_is_deterministic_for_a_seed(rng: np.random.Generator) -> None:
    maps = planted_maps(np.arange(30) % 2, rng)
    first = spray(maps, rng=np.random.default_rng(3))
    second = spray(maps, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.eigenvalues, second.eigenvalues)


def test_spray_on_identical_maps_gives_one_cluster(rng: np.random.Generator) -> None:
    maps = np.repeat(planted_maps(np.zeros(1, dtype=np.int64), rng), 25, axis=0)
    result = spray(maps, rng=rng)
    assert result.n_clusters == 1 and result.n_distinct == 1
    assert result.labels.tolist() == [0] * 25
    assert result.eigenvalues.tolist() == [0.0]


def test_duplicated_maps_share_a_cluster(rng: np.random.Generator) -> None:
    truth = np.arange(40) % 2
    maps = planted_maps(truth, rng)
    doubled = spray(np.concatenate([maps, maps]), rng=rng)
    assert doubled.n_distinct == 40 and doubled.n_clusters == 2
    np.testing.assert_array_equal(doubled.labels[:40], doubled.labels[40:])
    assert adjusted_rand_score(truth, doubled.labels[:40]) == pytest.approx(1.0)


def test_spray_on_a_single_map(rng: np.random.Generator) -> None:
    result = spray(np.ones((1, 4, 4)), rng=rng)
    assert result.n_clusters == 1 and result.labels.tolist() == [0]
    assert result.eigenvalues.tolist() == [0.0]
    assert result.embedding.shape == (1, 1)


def test_spray_with_fewer_maps_than_k(rng: np.random.Generator) -> None:
    result = spray(planted_maps(np.array([0, 1, 0, 1]), rng), k=10, rng=rng)
    assert result.labels.shape == (4,)
    assert 1 <= result.n_clusters <= 3
    assert result.eigenvalues.shape == (4,)


def test_disconnected_graph_gives_one_cluster_per_component(rng: np.random.Generator) -> None:
    # k = 3 with three far-apart groups of 10: no neighbour crosses groups.
    truth = np.repeat(np.arange(3), 10)
    result = spray(planted_maps(truth, rng, noise=0.02), k=3, rng=rng)
    np.testing.assert_allclose(result.eigenvalues[:3], 0.0, atol=1e-10)
    assert result.eigenvalues[3] > 1e-3
    assert result.n_clusters == 3
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)


def test_n_clusters_overrides_the_eigengap(rng: np.random.Generator) -> None:
    maps = planted_maps(np.arange(30) % 2, rng)
    result = spray(maps, n_clusters=4, rng=rng)
    assert result.n_clusters == 4 and set(result.labels.tolist()) == {0, 1, 2, 3}
    assert result.params.n_clusters == 4
    with pytest.raises(ValueError, match="distinct maps"):
        spray(maps[:3], n_clusters=5, rng=rng)


def test_spray_records_its_parameters(rng: np.random.Generator) -> None:
    result = spray(planted_maps(np.arange(12) % 2, rng), size=(8, 8), k=4, max_clusters=3, rng=rng)
    assert result.params.size == (8, 8) and result.params.factor is None
    assert (result.params.k, result.params.max_clusters, result.params.normalise) == (4, 3, "max_abs")
    assert result.params.n_eigenvalues == 20


def test_result_arrays_are_read_only(rng: np.random.Generator) -> None:
    result = spray(planted_maps(np.arange(12) % 2, rng), rng=rng)
    assert isinstance(result, SprayResult)
    with pytest.raises(ValueError, match="read-only"):
        result.labels[0] = 5


def gaussian_affinity(features: ArrayLike, *, k: int) -> NDArray[np.float64]:
    """A fully connected heat-kernel affinity with bandwidth from the k-th neighbour distance."""
    points = np.asarray(features, dtype=np.float64)
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    sigma = np.sort(distances, axis=1)[:, min(k, len(points) - 1)].mean()
    affinity: NDArray[np.float64] = np.exp(-(distances**2) / (2 * sigma**2))
    np.fill_diagonal(affinity, 0.0)
    return affinity


def test_steps_are_swappable(rng: np.random.Generator) -> None:
    truth = np.arange(40) % 2
    maps = planted_maps(truth, rng)
    steps = dataclasses.replace(SpraySteps(), affinity=gaussian_affinity)
    result = spray(maps, steps=steps, n_clusters=2, rng=rng)
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    # A different affinity gives a different spectrum from the k-NN default.
    default = spray(maps, rng=rng)
    assert not np.allclose(result.eigenvalues, default.eigenvalues)


def count_zero_eigenvalues(eigenvalues: ArrayLike, *, max_clusters: int) -> int:
    """Clusters = eigenvalues equal to zero (connected components), capped at max_clusters."""
    return int(min(max_clusters, max(1, int(np.sum(np.asarray(eigenvalues) < 1e-9)))))


def test_cluster_count_step_is_swappable(rng: np.random.Generator) -> None:
    truth = np.repeat(np.arange(3), 10)
    maps = planted_maps(truth, rng, noise=0.02)
    steps = SpraySteps(n_clusters=count_zero_eigenvalues)
    assert spray(maps, k=3, steps=steps, rng=rng).n_clusters == 3
    assert spray(maps, k=12, steps=steps, rng=rng).n_clusters == 1  # k > group size joins the groups


def test_spray_per_label_runs_each_label(rng: np.random.Generator) -> None:
    maps = {
        "AU01": planted_maps(np.zeros(15, dtype=np.int64), rng),
        "AU02": planted_maps(np.arange(30) % 2, rng),
    }
    results = spray_per_label(maps, factor=2, rng=rng)
    assert list(results) == ["AU01", "AU02"]
    assert (results["AU01"].n_clusters, results["AU02"].n_clusters) == (1, 2)
    assert results["AU02"].labels.shape == (30,)


@settings(max_examples=8)
@given(st.permutations(list(range(24))))
def test_clusters_do_not_depend_on_the_order_of_the_maps(order: list[int]) -> None:
    rng = np.random.default_rng(11)
    truth = np.arange(24) % 2
    maps = planted_maps(truth, rng)
    base = spray(maps, rng=np.random.default_rng(0)).labels
    permuted = spray(maps[order], rng=np.random.default_rng(0)).labels
    pairs = itertools.combinations(range(24), 2)
    assert all((base[order[i]] == base[order[j]]) == (permuted[i] == permuted[j]) for i, j in pairs)


# --------------------------------------------------------------------------------------------------
# SpRAy per action unit over sequences (TP §3.3)
# --------------------------------------------------------------------------------------------------


def test_default_spray_k() -> None:
    assert default_spray_k([]) == 10
    assert default_spray_k([0, 2, 3]) == 10
    assert default_spray_k([12, 11, 0, 13]) == 36  # three times the median count
    assert default_spray_k([10] * 30) == 75  # a quarter of all maps


def test_focus_input_keeps_the_top_share_of_each_map_by_magnitude(rng: np.random.Generator) -> None:
    maps = rng.normal(size=(3, 20, 20))
    maps[2] = 0.0
    focus = SPRAY_INPUTS["focus"](maps)
    assert set(np.unique(focus)) <= {0.0, 1.0}
    n_kept = int(np.ceil(FOCUS_FRACTION * 400))
    for index in (0, 1):
        kept = focus[index].astype(bool)
        assert kept.sum() == n_kept  # continuous values: no ties
        assert np.abs(maps[index])[kept].min() >= np.abs(maps[index])[~kept].max()
    assert not focus[2].any()  # a map without relevance focuses nowhere
    scaled = SPRAY_INPUTS["focus"](maps * np.array([5.0, -0.1, 1.0])[:, None, None])
    np.testing.assert_array_equal(scaled, focus)  # strength and sign do not change the focus
