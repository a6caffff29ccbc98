"""Tests for analysis/unit_relevance.py: LRP relevance per frame and active unit (TP §3.2).

The model is the session's ``trained`` fixture (conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.datasets.synthetic_sequences import make_sequences


@pytest.mark.tf
@pytest.mark.slow
def test_logit_model_gives_the_pre_sigmoid_outputs(trained) -> None:  # type: ignore[no-untyped-def]
    from analysis.action_units import predict_units
    from analysis.unit_relevance import unit_logit_model

    frames = make_sequences(1, rng=np.random.default_rng(5), classes=["surprise"])[0].frames
    probabilities = predict_units(trained.model, frames)
    logits = unit_logit_model(trained.model).predict(frames)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-logits)), probabilities, atol=1e-5)


@pytest.mark.tf
@pytest.mark.slow
def test_unit_relevance_one_map_per_active_unit(trained) -> None:  # type: ignore[no-untyped-def]
    from analysis.unit_relevance import unit_explainer, unit_relevance

    frames = make_sequences(1, rng=np.random.default_rng(6), classes=["surprise"], n_frames=(8, 8))[0].frames
    active = [frozenset(), frozenset({"AU01", "AU26"}), frozenset({"AU26"})] + [frozenset()] * 5
    relevance = unit_relevance(unit_explainer(trained.model), frames, active)
    assert set(relevance) == {"AU01", "AU26"}
    assert relevance["AU01"].shape == (1, 48, 48) and relevance["AU26"].shape == (2, 48, 48)
    assert np.isfinite(relevance["AU26"]).all() and np.abs(relevance["AU26"]).sum() > 0
