"""Long work off the GUI thread: a plain function runs in a thread pool, its result comes back as a signal.

The function is called as ``fn(progress, cancelled)``: ``progress(fraction, text)`` reports how far
it is (fraction in [0, 1]), ``cancelled()`` tells it to stop early. It knows nothing of Qt. Its
result, its exception or its progress reach the callbacks given to :func:`run_task` on the GUI
thread (queued signals), so the callbacks may touch widgets. After :meth:`Task.cancel` nothing more
is delivered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from analysis.progress import ProgressCallback

__all__ = ["ProgressCallback", "Task", "run_task"]

_running: set[Task] = set()  # keeps tasks (and their signal objects) alive until they report


class _Emitter(QObject):
    """Carries a task's news from the worker thread (signals are emitted there, delivered queued)."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    def __init__(self, task: Task, fn: Callable[[ProgressCallback, Callable[[], bool]], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._task = task
        self._fn = fn

    def run(self) -> None:
        task = self._task
        try:
            result = self._fn(task._report_progress, task.is_cancelled)
        except BaseException as err:  # handed to the GUI thread, which shows or re-raises it
            _emit(task._emitter, "failed", err)
        else:
            _emit(task._emitter, "succeeded", result)


def _emit(emitter: _Emitter, name: str, *values: Any) -> None:
    """Emit from the worker thread, unless the GUI side is gone (window closed, app quitting).

    Qt then has deleted the emitter, and emitting would raise "Signal source has been deleted" on
    the worker thread; there is nobody left to deliver to, so the news is dropped.
    """
    try:
        getattr(emitter, name).emit(*values)
    except RuntimeError:
        if shiboken6.isValid(emitter):
            raise


class Task(QObject):
    """One background call; created by :func:`run_task`.

    Attributes
    ----------
    done : bool
        True once the result or the error was delivered (or the task was cancelled).
    """

    def __init__(
        self,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None] | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        super().__init__()
        self._on_result, self._on_error, self._on_progress = on_result, on_error, on_progress
        self._cancel = threading.Event()
        self.done = False
        self.error: BaseException | None = None
        self._emitter = _Emitter()
        queued = Qt.ConnectionType.QueuedConnection
        self._emitter.progress.connect(self._deliver_progress, queued)
        self._emitter.succeeded.connect(self._deliver_result, queued)
        self._emitter.failed.connect(self._deliver_error, queued)

    def cancel(self) -> None:
        """Ask the function to stop (its ``cancelled()`` turns True); nothing more is delivered."""
        self._cancel.set()
        self._finish()

    def is_cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (thread-safe; the function polls it)."""
        return self._cancel.is_set()

    def _report_progress(self, fraction: float, text: str) -> None:
        if not self._cancel.is_set():
            _emit(self._emitter, "progress", float(fraction), str(text))

    @Slot(float, str)
    def _deliver_progress(self, fraction: float, text: str) -> None:
        if not self.done and self._on_progress is not None:
            self._on_progress(fraction, text)

    @Slot(object)
    def _deliver_result(self, result: Any) -> None:
        if self.done:
            return
        self._finish()
        self._on_result(result)

    @Slot(object)
    def _deliver_error(self, error: BaseException) -> None:
        if self.done:
            return
        self._finish()
        self.error = error
        if self._on_error is None:
            raise error
        self._on_error(error)

    def _finish(self) -> None:
        self.done = True
        _running.discard(self)


def run_task(
    fn: Callable[[ProgressCallback, Callable[[], bool]], Any],
    *,
    on_result: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
    on_progress: ProgressCallback | None = None,
    pool: QThreadPool | None = None,
) -> Task:
    """Run ``fn(progress, cancelled)`` in a thread pool; deliver its outcome on the GUI thread.

    Parameters
    ----------
    fn : callable
        A plain function of (progress, cancelled); it must not touch widgets.
    on_result : callable
        Receives the return value.
    on_error : callable, optional
        Receives the exception; without it the exception is raised on the GUI thread.
    on_progress : callable, optional
        Receives (fraction, text) reports.
    pool : QThreadPool, optional
        The global pool by default.

    Returns
    -------
    Task
        To cancel the call or check whether it is done.
    """
    task = Task(on_result, on_error, on_progress)
    _running.add(task)
    (pool or QThreadPool.globalInstance()).start(_Runnable(task, fn))
    return task
