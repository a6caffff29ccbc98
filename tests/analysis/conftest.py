"""Fixtures shared by the tests of the temporal-prototype modules (TP §3.1-3.4).

``trained`` is one small action unit model trained on synthetic AU sequences (about half a minute on
a CPU), ``analysed`` one pipeline run of it on held-out sequences; both are built once per test session
and shared by ``test_action_units``, ``test_unit_relevance`` and ``test_prototype_pipeline``. ``toy``
is a pipeline run on given relevance (no TensorFlow).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.datasets.synthetic_sequences import make_sequences
from analysis.prototype_pipeline import prototypes_from_relevance
from tests.analysis._toy_prototypes import toy_relevance


@pytest.fixture
def toy(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    sequences, scores, relevance, sides = toy_relevance(rng)
    result = prototypes_from_relevance(
        sequences, scores, relevance, units=("A", "B"), rng=np.random.default_rng(1), factor=2
    )
    return result, sides


@pytest.fixture(scope="session")
def trained():  # type: ignore[no-untyped-def]
    from analysis.action_units import train_default_unit_model

    return train_default_unit_model(seed=0, n_per_class=20, n_val_per_class=4, epochs=12)


@pytest.fixture(scope="session")
def analysed(trained):  # type: ignore[no-untyped-def]
    from analysis.prototype_pipeline import analyse_sequences

    sequences = make_sequences(16, rng=np.random.default_rng(99))
    result = analyse_sequences(trained.model, sequences, rng=np.random.default_rng(0))
    return sequences, result
