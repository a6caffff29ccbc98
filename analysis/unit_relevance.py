"""Relevance maps of the active action units by layer-wise relevance propagation (TP §3.2).

For every frame and every unit the model predicts active (:func:`analysis.prototypes.active_labels`),
LRP assigns each pixel its contribution to that unit's prediction. TP explains the unit's pre-sigmoid
logit with iNNvestigate's ``LRPSequentialPresetAFlat`` (:data:`DEFAULT_ANALYZER`):
:func:`unit_logit_model` exposes the logits of a model from :func:`analysis.action_units.build_unit_model`,
:func:`unit_explainer` builds the explainer once per model, and :func:`unit_relevance` returns one map
per active (frame, unit), grouped by unit in frame order, as SpRAy per unit (:mod:`analysis.spray`,
TP §3.3) takes them.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.2 (LRP,
   LRPSequentialPresetAFlat), §3.4 (one explanation per predicted unit).
.. [2] Bach et al. (2015), On pixel-wise explanations for non-linear classifier decisions by
   layer-wise relevance propagation (TP [27]).
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.action_units import _check_units
from analysis.datasets.synthetic_sequences import UNIT_NAMES
from analysis.models import BoundModel, check_images

if TYPE_CHECKING:
    from analysis.saliency import RelevanceExplainer

__all__ = ["DEFAULT_ANALYZER", "unit_explainer", "unit_logit_model", "unit_relevance"]

#: The relevance method of TP §3.2 (iNNvestigate's LRPSequentialPresetAFlat).
DEFAULT_ANALYZER = "lrp.sequential_preset_a_flat"

_Maps = NDArray[np.float32]


def unit_logit_model(model: BoundModel) -> BoundModel:
    """The same network returning the pre-sigmoid logits, sharing graph, session and lock.

    Relevance explains a logit, not a probability (TP §3.2); iNNvestigate needs a linear output.

    Raises
    ------
    ValueError
        When the model's last layer is not a separate sigmoid ``Activation``.
    """
    from analysis.models import ensure_graph_mode

    tf = ensure_graph_mode()
    with model.scope() as keras_model:
        last = keras_model.layers[-1]
        if not (
            isinstance(last, tf.keras.layers.Activation) and last.activation is tf.keras.activations.sigmoid
        ):
            raise ValueError(
                f"model {keras_model.name!r} does not end in a separate sigmoid Activation layer (last layer "
                f"{last.name!r}); build it with build_unit_model."
            )
        logits = tf.keras.Model(keras_model.inputs, last.input, name=f"{keras_model.name}_logits")
    return BoundModel(model=logits, graph=model.graph, session=model.session, lock=model.lock)


def unit_explainer(model: BoundModel, analyzer: str = DEFAULT_ANALYZER) -> RelevanceExplainer:
    """A relevance explainer for the units' logits (built once per model; reuse it).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.2, LRPSequentialPresetAFlat from iNNvestigate.
    """
    from analysis.saliency import RelevanceExplainer

    return RelevanceExplainer(unit_logit_model(model), analyzer)


def unit_relevance(
    explainer: RelevanceExplainer,
    frames: ArrayLike,
    active: Sequence[AbstractSet[str]],
    *,
    units: Sequence[str] = UNIT_NAMES,
    batch_size: int = 64,
) -> dict[str, _Maps]:
    """One relevance map per frame and active unit, grouped by unit in frame order (TP §3.2).

    Parameters
    ----------
    explainer : RelevanceExplainer
        From :func:`unit_explainer`.
    frames : array_like, shape (T, H, W) or (T, H, W, 3)
        Frames of one or several sequences.
    active : sequence of set of str, length T
        Active units per frame (e.g. :func:`analysis.prototypes.active_labels` of the predictions).
    units : sequence of str
        Output names of the model, in output order.
    batch_size : int

    Returns
    -------
    dict of str to ndarray of float32, shape (n_u, H, W)
        For each unit active in some frame, its maps in frame order (colour relevance summed).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.2 (relevance per pixel), §3.4 (per predicted unit).
    """
    from analysis.saliency import maps_to_2d

    x = check_images(frames=frames)
    names = _check_units(units)
    if len(active) != len(x):
        raise ValueError(f"need one set of active units per frame; got {len(active)} for {len(x)} frames.")
    unknown = sorted({u for labels in active for u in labels} - set(names))
    if unknown:
        raise ValueError(f"active units {unknown!r} are not outputs of the model ({', '.join(names)}).")
    pairs = [(t, names.index(u)) for t, labels in enumerate(active) for u in sorted(labels, key=names.index)]
    if not pairs:
        return {}
    rows = np.array([t for t, _ in pairs])
    outputs = np.array([u for _, u in pairs])
    relevance = maps_to_2d(explainer.explain(x[rows], class_index=outputs, batch_size=batch_size).relevance)
    return {names[u]: relevance[outputs == u] for u in sorted(set(outputs.tolist()))}
