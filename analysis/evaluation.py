"""Scoring a trained model on labelled images: accuracy, macro-F1, per-class F1, confusion matrix.

The same numbers as the learning curves (:func:`analysis.training.validation_scores`: macro-F1 over the
classes present in the labels or the predictions, a class never predicted scoring 0), for any model on any
split — a Trainer, or a Trainee kept by ``rbdm experiment --keep-models`` scored on data its run never saw.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (F1 on the validation set) and §6
   (confusion matrices, Figures 11 and 12).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.labels import LABELS

if TYPE_CHECKING:
    from analysis.models import BoundModel

__all__ = ["Evaluation", "evaluate_model", "scores_of"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A model's scores on one set of labelled images.

    Parameters
    ----------
    n_images : int
    accuracy : float
        Share of argmax predictions equal to the label.
    macro_f1 : float
        Mean F1 over the classes present in the labels or the predictions.
    per_class_f1 : dict of str to float
        F1 of every class of :data:`analysis.labels.LABELS` the model has (0 when absent from both).
    confusion : ndarray of int64, shape (K, K)
        Rows true class, columns predicted class.
    """

    n_images: int
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion: NDArray[np.int64]


def scores_of(predicted: ArrayLike, labels: ArrayLike, *, n_classes: int) -> Evaluation:
    """The scores of predicted class indices against true ones (pure; the oracle of :func:`evaluate_model`).

    Raises
    ------
    ValueError
        For mismatched lengths, no images, or class indices outside ``[0, n_classes)``.
    """
    from sklearn.metrics import f1_score

    p = np.asarray(predicted, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    if p.shape != y.shape or p.ndim != 1 or len(y) == 0:
        raise ValueError(
            f"need one prediction per label (non-empty, 1-D); got shapes {p.shape!r} and {y.shape!r}."
        )
    if min(p.min(), y.min()) < 0 or max(p.max(), y.max()) >= n_classes:
        raise ValueError(f"class indices must lie in [0, {n_classes}); check the model's labels.")
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y, p), 1)
    per_class = f1_score(y, p, labels=np.arange(n_classes), average=None, zero_division=0)
    return Evaluation(
        n_images=len(y),
        accuracy=float(np.mean(p == y)),
        macro_f1=float(f1_score(y, p, average="macro", zero_division=0)),
        per_class_f1={LABELS[k]: float(per_class[k]) for k in range(n_classes)},
        confusion=confusion,
    )


def evaluate_model(model: BoundModel, images: ArrayLike, labels: ArrayLike) -> Evaluation:
    """Score ``model`` on ``images`` (N, H, W) or (N, H, W, 3) in [0, 1] with class indices ``labels``.

    Returns
    -------
    Evaluation

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 and §6.
    """
    from analysis.models import as_model_input, check_images

    x = check_images(images=images)
    with model.scope() as keras_model:
        inputs = as_model_input(x, input_shape=model.input_shape)
        probabilities = np.asarray(keras_model.predict(inputs, batch_size=256, verbose=0))
    return scores_of(probabilities.argmax(axis=1), labels, n_classes=model.n_classes)
