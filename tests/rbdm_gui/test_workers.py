"""Background tasks whose GUI side goes away while they run (closing the window mid-task)."""

from __future__ import annotations

import threading

import pytest
import shiboken6
from PySide6.QtCore import QThreadPool
from pytestqt.qtbot import QtBot

from rbdm_gui.screens.workers import run_task

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("outcome", ["result", "error"])
def test_a_task_whose_receiver_was_deleted_ends_quietly(
    qtbot: QtBot, capfd: pytest.CaptureFixture[str], outcome: str
) -> None:
    """Old code: 'RuntimeError: Signal source has been deleted' on the worker thread (issue 19)."""
    gate = threading.Event()
    delivered: list[object] = []

    def work(progress, cancelled):  # type: ignore[no-untyped-def]
        gate.wait(5)
        progress(0.5, "half")
        if outcome == "error":
            raise OSError("disk gone")
        return 1

    task = run_task(work, on_result=delivered.append, on_error=delivered.append)
    shiboken6.delete(task._emitter)  # what closing the window does to a running task's emitter
    gate.set()
    assert QThreadPool.globalInstance().waitForDone(5000)
    qtbot.wait(50)
    assert delivered == []
    assert "Signal source has been deleted" not in capfd.readouterr().err
