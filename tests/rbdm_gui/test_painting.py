"""Qt paints on the GUI thread alone: the app switches Qt's GUI thread pool off before its first window."""

from __future__ import annotations

import os

import pytest

from rbdm_gui.screens.painting import GUI_THREADPOOL_VARIABLE, paint_on_gui_thread


def test_the_gui_thread_pool_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GUI_THREADPOOL_VARIABLE, raising=False)
    paint_on_gui_thread()
    assert os.environ[GUI_THREADPOOL_VARIABLE] == "1"


def test_a_value_set_by_the_user_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GUI_THREADPOOL_VARIABLE, "yes")
    paint_on_gui_thread()
    assert os.environ[GUI_THREADPOOL_VARIABLE] == "yes"


def test_the_app_switches_it_off_before_it_creates_the_application(monkeypatch: pytest.MonkeyPatch) -> None:
    from rbdm_gui.screens import app

    seen: list[str | None] = []

    class _Stop(Exception):
        pass

    class _Application:
        """Stands in for QApplication: notes the variable when the application would be created."""

        @staticmethod
        def instance() -> None:
            return None

        def __init__(self, *args: object) -> None:
            seen.append(os.environ.get(GUI_THREADPOOL_VARIABLE))
            raise _Stop

    monkeypatch.delenv(GUI_THREADPOOL_VARIABLE, raising=False)
    monkeypatch.setattr(app, "QApplication", _Application)
    with pytest.raises(_Stop):
        app.main([])
    assert seen == ["1"]
