"""Tests for analysis.evaluation: the scores of predictions, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.evaluation import scores_of


def test_scores_by_hand() -> None:
    # true 0 0 1 1 2, predicted 0 1 1 1 0 (3 classes)
    evaluation = scores_of([0, 1, 1, 1, 0], [0, 0, 1, 1, 2], n_classes=3)
    assert evaluation.n_images == 5 and evaluation.accuracy == pytest.approx(3 / 5)
    np.testing.assert_array_equal(evaluation.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    # class 0: P 1/2, R 1/2 → F1 0.5; class 1: P 2/3, R 1 → 0.8; class 2: 0
    assert evaluation.per_class_f1 == pytest.approx({"neutral": 0.5, "happy": 0.8, "sad": 0.0})
    assert evaluation.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_bad_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="one prediction per label"):
        scores_of([0, 1], [0], n_classes=2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        scores_of([0, 2], [0, 1], n_classes=2)
