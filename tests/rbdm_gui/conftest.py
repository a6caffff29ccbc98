"""GUI tests: offscreen Qt (set in tests/conftest.py), settings and studies under a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rbdm_gui.workflows.settings import CONFIG_DIR_ENV, DATA_DIR_ENV


@pytest.fixture(autouse=True)
def _user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the real user's settings and study files."""
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
