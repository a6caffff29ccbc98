"""Tests for analysis/action_units.py: the multi-label action unit model (TP §3.1).

The TensorFlow tests share one small model trained once per session on synthetic AU sequences and one
pipeline run on held-out sequences (``trained`` and ``analysed`` in conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.action_units import unit_f1
from analysis.datasets.synthetic_sequences import UNIT_NAMES, make_sequences

# --------------------------------------------------------------------------------------------------
# Pure parts (no TensorFlow)
# --------------------------------------------------------------------------------------------------


def test_unit_f1_matches_the_definition(rng: np.random.Generator) -> None:
    scores = rng.uniform(size=(50, 4))
    truth = rng.uniform(size=(50, 4)) < 0.4
    truth[:, 3] = False
    scores[:, 3] = 0.1  # never active, never predicted
    expected = []
    for u in range(4):
        tp = sum(1 for i in range(50) if scores[i, u] > 0.5 and truth[i, u])
        fp = sum(1 for i in range(50) if scores[i, u] > 0.5 and not truth[i, u])
        fn = sum(1 for i in range(50) if scores[i, u] <= 0.5 and truth[i, u])
        expected.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    np.testing.assert_allclose(unit_f1(scores, truth), expected)
    with pytest.raises(ValueError, match="shape"):
        unit_f1(scores, truth[:, :2])


# --------------------------------------------------------------------------------------------------
# The trained model (TensorFlow; fixtures in conftest.py)
# --------------------------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.slow
def test_model_detects_every_unit(analysed) -> None:  # type: ignore[no-untyped-def]
    sequences, result = analysed
    scores = np.concatenate([s.scores for s in result.sequences])
    truth = np.concatenate([s.active for s in sequences])
    f1 = unit_f1(scores, truth)
    assert f1.min() >= 0.7, dict(zip(UNIT_NAMES, f1.round(3), strict=True))


@pytest.mark.tf
@pytest.mark.slow
def test_model_file_round_trip(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from analysis.action_units import load_unit_model, predict_units, save_unit_model

    card = save_unit_model(tmp_path / "units.keras", trained)
    assert card.labels == UNIT_NAMES
    assert card.scores["val_f1_AU12"] == pytest.approx(trained.best.val_f1[UNIT_NAMES.index("AU12")])
    model, loaded_card = load_unit_model(tmp_path / "units.keras")
    assert loaded_card == card
    frames = make_sequences(1, rng=np.random.default_rng(7), classes=["anger"])[0].frames
    np.testing.assert_allclose(predict_units(model, frames), predict_units(trained.model, frames), atol=1e-6)
