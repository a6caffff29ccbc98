"""Third-party warnings go to a log file once each; the project's own stay on the terminal."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from rbdm_gui.workflows.logs import third_party_warnings_to


def _keras_warning(text: str) -> None:
    warnings.warn_explicit(
        text, DeprecationWarning, "/usr/lib/python3/site-packages/keras/src/backend.py", 42, module="keras"
    )


def test_third_party_warnings_are_logged_once_and_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old code: Keras printed its deprecation warning to the terminal on every saliency computation."""
    log = tmp_path / "logs" / "third-party.log"
    shown_before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with third_party_warnings_to(log):
            for _ in range(3):
                _keras_warning("`tf.placeholder` is deprecated")
            _keras_warning("another deprecation")
            logging.getLogger("tensorflow").warning("retracing the graph")
            with pytest.warns(UserWarning, match="dropped samples"):  # the project's own: still shown
                warnings.warn_explicit(
                    "dropped samples", UserWarning, str(Path(__file__).resolve()), 1, module="tests"
                )
    assert warnings.showwarning is shown_before  # undone on leaving
    lines = log.read_text(encoding="utf-8").splitlines()
    assert (
        sum("tf.placeholder" in line for line in lines) == 1 and sum("another" in line for line in lines) == 1
    )
    assert any("retracing the graph" in line for line in lines)
    assert "deprecat" not in capsys.readouterr().err
