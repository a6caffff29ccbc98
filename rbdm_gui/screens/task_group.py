"""Named computations of one screen on worker threads, at most one running per name.

A screen often runs a few kinds of work at once (open a study, compute relevance, compare a stimulus)
and wants a newer request of one kind to replace the older one. :class:`TaskGroup` keeps one
:class:`~rbdm_gui.screens.workers.Task` per name: starting a name cancels its running task (whose
result is then never delivered), and ``on_change`` is called whenever a task starts or ends, so the
screen can show a progress bar while anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rbdm_gui.screens.workers import ProgressCallback, Task, run_task

__all__ = ["TaskGroup"]


class TaskGroup:
    """One running task per name; see the module notes.

    Parameters
    ----------
    on_change : callable, optional
        Called with no argument after a task started, delivered its result or error.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._tasks: dict[str, Task] = {}
        self._on_change = on_change or (lambda: None)

    def start(
        self,
        name: str,
        work: Callable[[ProgressCallback, Callable[[], bool]], Any],
        *,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_progress: ProgressCallback | None = None,
    ) -> Task:
        """Run ``work(progress, cancelled)`` on a worker thread under ``name``, cancelling the last one."""
        self.cancel(name)

        def finished(result: Any) -> None:
            self._on_change()
            on_result(result)

        def failed(error: BaseException) -> None:
            self._on_change()
            on_error(error)

        task = self._tasks[name] = run_task(
            work, on_result=finished, on_error=failed, on_progress=on_progress
        )
        self._on_change()
        return task

    def running(self, *names: str) -> bool:
        """Whether a task runs under one of ``names`` (any name when none is given)."""
        return any(not task.done for n, task in self._tasks.items() if not names or n in names)

    def running_except(self, *names: str) -> bool:
        """Whether a task runs under a name other than ``names``."""
        return any(not task.done for n, task in self._tasks.items() if n not in names)

    def cancel(self, name: str) -> bool:
        """Cancel the task running under ``name``; whether one was running."""
        task = self._tasks.get(name)
        if task is None or task.done:
            return False
        task.cancel()
        return True

    def cancel_all(self) -> None:
        """Cancel every running task (they end on their own; nothing more is delivered)."""
        for name in list(self._tasks):
            self.cancel(name)
        self._on_change()
