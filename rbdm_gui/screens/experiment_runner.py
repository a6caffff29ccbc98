"""The Qt side of running an experiment in the background: a worker process, its news as Qt signals.

:class:`ExperimentRunner` starts ``python -m rbdm_gui.workflows.experiment_worker``
(:mod:`rbdm_gui.workflows.experiment_worker`)
in a :class:`~PySide6.QtCore.QProcess`. TensorFlow then trains in another process at a lower priority, so
neither its CPU work nor Python's GIL can hold up the GUI's event loop; the process reports on standard
output as JSON lines, which arrive here through the event loop (no thread of our own) and become
:class:`analysis.experiment.ExperimentProgress` records on the :attr:`ExperimentRunner.progress` signal, curve
points included, for live plots.

Cancelling writes ``cancel`` to the process's standard input: training stops after the current step and
the run folder is stored as ``cancelled`` with the curves so far. A process that has not ended
``cancel_grace_ms`` later is terminated, then killed, and its run folder marked ``cancelled`` here. If
the GUI goes away, the process's standard input closes, which cancels the run as well.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5, §5.6 and §6.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QProcess, QProcessEnvironment, QTimer, Signal

from rbdm_gui.workflows.experiment_worker import LaunchRequest, end_run, parse_event, progress_from_event

__all__ = ["FINAL_STATUSES", "ExperimentRunner"]

#: What :attr:`ExperimentRunner.finished` can say about a run.
FINAL_STATUSES = ("finished", "cancelled", "failed")

_ROOT = Path(__file__).resolve().parents[2]
_STDERR_LINES = 60


class ExperimentRunner(QObject):
    """Runs one experiment at a time in a worker process; reports on the GUI thread.

    Parameters
    ----------
    python : str
        The interpreter that runs the worker (this one by default).
    cancel_grace_ms : int
        How long a cancelled run may take to stop by itself before the process is terminated.

    Signals
    -------
    started(str)
        The worker runs; the run folder.
    progress(object)
        An :class:`analysis.experiment.ExperimentProgress` record (``point`` set for a new curve point).
    used(object)
        The images per split the run really uses: a dict ``{"n_train", "n_val", "warnings"}``.
    finished(str, str)
        ``(status, text)``: status one of :data:`FINAL_STATUSES`; text the run folder, or for
        ``failed`` the error message to show.
    """

    started = Signal(str)
    progress = Signal(object)
    used = Signal(object)
    finished = Signal(str, str)

    def __init__(
        self, *, python: str = sys.executable, cancel_grace_ms: int = 20_000, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.python = python
        self.cancel_grace_ms = cancel_grace_ms
        self.request: LaunchRequest | None = None
        self._process: QProcess | None = None
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._outcome: tuple[str, str] | None = None
        self._cancel_requested = False
        self._request_file: Path | None = None
        self._escalation = QTimer(self)
        self._escalation.setSingleShot(True)
        self._escalation.timeout.connect(self._escalate)
        app = QCoreApplication.instance()
        if app is not None:  # quitting the app cancels the run instead of killing its process mid-write
            app.aboutToQuit.connect(self.stop)

    @property
    def running(self) -> bool:
        """Whether a worker process is alive."""
        return self._process is not None

    @property
    def cancelling(self) -> bool:
        """Whether the running experiment was asked to stop."""
        return self.running and self._cancel_requested

    @property
    def stderr_tail(self) -> str:
        """The worker's last lines on standard error (TensorFlow's log, a traceback)."""
        return "\n".join(self._stderr)

    def start(self, request: LaunchRequest) -> None:
        """Start the worker on ``request``.

        Raises
        ------
        RuntimeError
            When an experiment is running already.
        """
        if self._process is not None:
            raise RuntimeError("an experiment is running already; cancel it or wait until it ends.")
        handle, name = tempfile.mkstemp(prefix="rbdm-experiment-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(request.to_dict(), file)
        self.request, self._request_file = request, Path(name)
        self._buffer, self._outcome, self._cancel_requested = b"", None, False
        self._stderr.clear()
        process = self._process = QProcess(self)
        process.setProgram(self.python)
        process.setArguments(["-m", "rbdm_gui.workflows.experiment_worker", "--stdin-control", name])
        process.setWorkingDirectory(str(_ROOT))
        process.setProcessEnvironment(_environment())
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        process.start()

    def cancel(self) -> None:
        """Ask the running experiment to stop; it ends as ``cancelled`` (nothing happens when none runs)."""
        process = self._process
        if process is None or self._cancel_requested:
            return
        self._cancel_requested = True
        process.write(b"cancel\n")
        self._escalation.start(self.cancel_grace_ms)

    def stop(self, *, wait_ms: int = 10_000) -> None:
        """Cancel and wait (blocking) until the worker is gone; killed after ``wait_ms``. For closing."""
        process = self._process
        if process is None:
            return
        self.cancel()
        if not process.waitForFinished(wait_ms):
            process.kill()
            process.waitForFinished(2_000)

    # --- the process's news ------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        process = self._process
        if process is None:
            return
        self._buffer += bytes(process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._dispatch(parse_event(line))

    def _read_stderr(self) -> None:
        process = self._process
        if process is None:
            return
        text = bytes(process.readAllStandardError().data()).decode("utf-8", errors="replace")
        self._stderr.extend(line for line in text.splitlines() if line.strip())

    def _dispatch(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        kind = event["event"]
        if kind == "started":
            self.started.emit(str(event.get("run_dir", "")))
        elif kind == "progress":
            self.progress.emit(progress_from_event(event))
        elif kind == "used":
            self.used.emit({key: event.get(key) for key in ("n_train", "n_val", "warnings")})
        elif kind == "done":
            self._outcome = (str(event.get("status", "finished")), str(event.get("run_dir", "")))
        elif kind == "failed":
            self._outcome = ("failed", str(event.get("error", "")) or self._last_error())

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._buffer.strip():
            self._dispatch(parse_event(self._buffer))
        self._buffer = b""
        request = self.request
        run_dir = "" if request is None else request.run_dir
        outcome = self._outcome
        if outcome is None and self._cancel_requested:
            if request is not None:
                end_run(request, status="cancelled")
            outcome = ("cancelled", run_dir)
        elif outcome is None:
            how = (
                "crashed" if exit_status == QProcess.ExitStatus.CrashExit else f"exited with code {exit_code}"
            )
            message = f"The experiment process {how} without a result. {self._last_error()}".strip()
            if request is not None:
                end_run(request, status="failed", error=message)
            outcome = ("failed", message)
        self._end(*outcome)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end("failed", f"Could not start {self.python!r} for the experiment; check the Python path.")

    def _escalate(self) -> None:
        process = self._process
        if process is None:
            return
        if process.state() != QProcess.ProcessState.NotRunning:
            process.terminate()  # the worker's second stop signal: it ends at once
            QTimer.singleShot(5_000, lambda: self._kill(process))

    def _kill(self, process: QProcess) -> None:
        if self._process is process:  # not a later run's process
            process.kill()

    def _last_error(self) -> str:
        return self._stderr[-1] if self._stderr else ""

    def _end(self, status: str, text: str) -> None:
        process, self._process = self._process, None
        self._escalation.stop()
        if process is not None:
            process.deleteLater()
        if self._request_file is not None:
            with contextlib.suppress(OSError):
                self._request_file.unlink()
            self._request_file = None
        self.finished.emit(status, text)


def _environment() -> QProcessEnvironment:
    """This process's environment, with the repository importable and TensorFlow's log kept short."""
    env = QProcessEnvironment.systemEnvironment()
    paths = [str(_ROOT), *filter(None, [env.value("PYTHONPATH", "")])]
    env.insert("PYTHONPATH", os.pathsep.join(paths))
    env.insert("PYTHONUNBUFFERED", "1")
    if not env.contains("TF_CPP_MIN_LOG_LEVEL"):
        env.insert("TF_CPP_MIN_LOG_LEVEL", "2")
    return env
