"""GUI event-loop latency while an experiment trains: worker process versus a thread in the GUI process.

A :class:`LatencyProbe` is a 10 ms precise ``QTimer`` on the GUI thread that records how late each tick
comes (the gap since the previous tick minus 10 ms): the time a click or a repaint would wait. It runs
over three scenarios, each on the same tiny experiment (RBDM §5.5; synthetic faces, the shipped
Trainer, a small-CNN Trainee, the ``none`` and ``mean+switch`` variants):

- ``idle``: the event loop with nothing to do (the baseline of the ratio column);
- ``process``: the Experiments screen runs the experiment as the app does, in a worker process
  (:class:`rbdm_gui.screens.experiment_runner.ExperimentRunner`), plotting its curve points live;
- ``thread``: the same request run by :func:`rbdm_gui.workflows.experiment_worker.execute` on a worker
  thread of
  the GUI process (:func:`rbdm_gui.screens.workers.run_task`), the alternative the app does not take:
  TensorFlow's
  Python-side work and the GIL then compete with the event loop.

Each row gives the lateness's median, 99th percentile and maximum, the ticks later than one 60 Hz frame
(16 ms), and what the GUI thread did in those late gaps (shares of their wall time): ``on CPU``, its own
work (a slot, a repaint: fixable here; its thread CPU time), and ``waiting for a core``, runnable but not
running because the cores were busy (the OS scheduler; its run-queue delay from Linux's
``/proc/thread-self/schedstat``, "–" elsewhere). The rest it slept: blocked on a lock, another thread or
the disk. The load average is printed with the table.

The GUI paints as the app does, without Qt's GUI thread pool
(:func:`rbdm_gui.screens.painting.paint_on_gui_thread`); ``--qt-thread-pool`` leaves the pool on, to
measure what it costs.

Run (offscreen Qt unless a display is set)::

    .venv/bin/python -m benchmarks.gui_latency
    .venv/bin/python -m benchmarks.gui_latency --n-train 256 --epochs 4
    .venv/bin/python -m benchmarks.gui_latency --n-train 256 --epochs 4 --qt-thread-pool
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from benchmarks._report import print_table

__all__ = ["FRAME_MS", "LatencyProbe", "latency_summary", "main"]

#: One frame at 60 Hz: a tick later than this is a visible stutter.
FRAME_MS = 16.0


class _Relay(QObject):
    """Carries progress records from the training thread to the view (a queued signal)."""

    progress = Signal(object)


class LatencyProbe(QObject):
    """Records the lateness of a periodic precise timer on the GUI thread (event-loop latency), and the GUI
    thread's CPU time and run-queue delay (Linux) in each gap between ticks.

    Parameters
    ----------
    interval_ms : int
        The timer's period; each tick's lateness is the gap since the previous tick minus this.
    """

    def __init__(self, *, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self._last_cpu = 0.0
        self._last_wait = 0.0
        self._lateness_ms: list[float] = []
        self._cpu_ms: list[float] = []
        self._wait_ms: list[float] = []

    def start(self) -> None:
        """Forget earlier ticks and start measuring."""
        self._lateness_ms, self._cpu_ms, self._wait_ms = [], [], []
        self._last, self._last_cpu, self._last_wait = time.perf_counter(), time.thread_time(), _run_delay_ms()
        self._timer.start(self.interval_ms)

    def stop(self) -> None:
        """Stop measuring."""
        self._timer.stop()

    @property
    def lateness_ms(self) -> NDArray[np.float64]:
        """Lateness of every tick so far, in milliseconds (negative when a tick came early)."""
        return np.asarray(self._lateness_ms, dtype=np.float64)

    @property
    def cpu_ms(self) -> NDArray[np.float64]:
        """The GUI thread's CPU time in the gap before every tick so far, in milliseconds."""
        return np.asarray(self._cpu_ms, dtype=np.float64)

    @property
    def wait_ms(self) -> NDArray[np.float64]:
        """The GUI thread's time runnable but not running (waiting for a core) in the gap before every tick
        so far, in milliseconds; NaN where Linux's ``/proc/thread-self/schedstat`` is missing."""
        return np.asarray(self._wait_ms, dtype=np.float64)

    def _tick(self) -> None:
        now, cpu, wait = time.perf_counter(), time.thread_time(), _run_delay_ms()
        self._lateness_ms.append((now - self._last) * 1000.0 - self.interval_ms)
        self._cpu_ms.append((cpu - self._last_cpu) * 1000.0)
        self._wait_ms.append(wait - self._last_wait)
        self._last, self._last_cpu, self._last_wait = now, cpu, wait


def _run_delay_ms() -> float:
    """The calling thread's total time waiting on a run queue so far (ms; Linux), NaN elsewhere."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as file:
            return int(file.read().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return float("nan")


def latency_summary(
    lateness_ms: NDArray[np.float64],
    *,
    cpu_ms: NDArray[np.float64] | None = None,
    wait_ms: NDArray[np.float64] | None = None,
    interval_ms: float = 10.0,
) -> dict[str, float]:
    """Ticks, median, 99th percentile and maximum of the lateness (ms; never below 0), the ticks later than
    :data:`FRAME_MS`, and the shares of those late gaps (wall time: ``interval_ms`` + lateness) that the GUI
    thread spent on a CPU (``late_cpu``, from ``cpu_ms`` per gap) and waiting for one (``late_wait``, from
    ``wait_ms``); NaN without late ticks or without the per-gap times."""
    raw = np.asarray(lateness_ms, dtype=np.float64)
    late = np.maximum(raw, 0.0)
    nan = float("nan")
    if late.size == 0:
        return {"ticks": 0.0, "p50_ms": nan, "p99_ms": nan, "max_ms": nan, "late": 0.0}
    frame_late = raw > FRAME_MS
    gaps_ms = float((raw[frame_late] + interval_ms).sum())

    def share(per_gap_ms: NDArray[np.float64] | None) -> float:
        if per_gap_ms is None or not frame_late.any():
            return nan
        return float(np.asarray(per_gap_ms, dtype=np.float64)[frame_late].sum() / gaps_ms)

    return {
        "ticks": float(late.size),
        "p50_ms": float(np.percentile(late, 50)),
        "p99_ms": float(np.percentile(late, 99)),
        "max_ms": float(late.max()),
        "late": float(frame_late.sum()),
        "late_cpu": share(cpu_ms),
        "late_wait": share(wait_ms),
    }


def _request(runs_dir: Path, args: argparse.Namespace) -> object:
    from analysis.experiment import ExperimentConfig, new_run_dir
    from analysis.trainee import TrainingOptions
    from rbdm_gui.workflows.assets import DEFAULT_TRAINER
    from rbdm_gui.workflows.experiment_worker import LaunchRequest

    config = ExperimentConfig(
        dataset="synthetic:n=50",
        trainer=str(DEFAULT_TRAINER),
        n_train=args.n_train,
        n_val=args.n_val,
        variants=("none", "mean+switch"),
        training=TrainingOptions(
            architecture="small_cnn",
            options={},
            epochs=args.epochs,
            switch_epoch=1,
            batch_size=16,
            eval_every_steps=2,
        ),
        tensorboard=False,
        cache_dir=tempfile.mkdtemp(prefix="rbdm-latency-cache-"),  # each scenario computes relevance
    )
    return LaunchRequest(config, str(new_run_dir(runs_dir, name="bench")))


def _measure(start: Callable[[], Callable[[], bool]]) -> tuple[dict[str, float], float]:
    """Run ``start()`` (which returns a 'done?' check) in the event loop under a probe; the summary and
    the wall time."""
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    check = QTimer()
    probe = LatencyProbe()
    probe.start()
    began = time.perf_counter()
    done = start()
    check.timeout.connect(lambda: loop.quit() if done() else None)
    check.start(50)
    loop.exec()
    check.stop()
    probe.stop()
    summary = latency_summary(
        probe.lateness_ms, cpu_ms=probe.cpu_ms, wait_ms=probe.wait_ms, interval_ms=probe.interval_ms
    )
    return summary, time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-train", type=int, default=128, help="training images (default: 128)")
    parser.add_argument("--n-val", type=int, default=64, help="validation images (default: 64)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per Trainee (default: 3)")
    parser.add_argument("--idle-s", type=float, default=5.0, help="length of the idle baseline (default: 5)")
    parser.add_argument(
        "--qt-thread-pool",
        action="store_true",
        help="leave Qt's GUI thread pool on (the app switches it off) to measure what it costs",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    from PySide6.QtWidgets import QApplication

    from rbdm_gui.screens.painting import GUI_THREADPOOL_VARIABLE, paint_on_gui_thread

    if args.qt_thread_pool:
        os.environ.pop(GUI_THREADPOOL_VARIABLE, None)
    else:
        paint_on_gui_thread()  # as rbdm_gui.screens.app.main does

    from rbdm_gui.screens.experiment_view import ExperimentView
    from rbdm_gui.screens.workers import run_task
    from rbdm_gui.workflows.experiment_worker import execute

    app = QApplication.instance() or QApplication([])  # noqa: F841 (keeps the application alive)
    runs = Path(tempfile.mkdtemp(prefix="rbdm-latency-"))
    view = ExperimentView(runs_dir=runs)
    view.resize(1400, 900)
    view.show()
    _measure(lambda: lambda: not view.busy)  # first paint and the runs listing: not part of any scenario
    rows: list[list[object]] = []

    def idle() -> Callable[[], bool]:
        until = time.perf_counter() + args.idle_s
        return lambda: time.perf_counter() >= until

    def process() -> Callable[[], bool]:
        request = _request(runs, args)
        view.follow(Path(request.run_dir))  # type: ignore[attr-defined]
        view.runner.start(request)  # type: ignore[arg-type]
        return lambda: not view.runner.running

    relay = _Relay()
    relay.progress.connect(view.show_progress)

    def thread() -> Callable[[], bool]:
        request = _request(runs, args)
        view.follow(Path(request.run_dir))  # type: ignore[attr-defined]

        def work(progress: object, cancelled: Callable[[], bool]) -> object:
            return execute(request, on_progress=relay.progress.emit, cancel=cancelled)  # type: ignore[arg-type]

        task = run_task(work, on_result=lambda _: None)
        return lambda: task.done

    thread_ready = False
    for name, start in (("idle", idle), ("process", process), ("thread", thread)):
        if name == "thread" and not thread_ready:
            # TensorFlow's first import in this process would count against the thread: do it first.
            from analysis._optional import import_tensorflow

            import_tensorflow("benchmarks.gui_latency")
            thread_ready = True
        summary, wall_s = _measure(start)
        rows.append(_row(name, summary, wall_s))
    baseline = float(rows[0][3])  # type: ignore[arg-type]
    for row in rows:
        row.insert(4, f"{float(row[3]) / max(baseline, 1e-3):.1f}×")  # type: ignore[arg-type]
    pool = "on (--qt-thread-pool)" if args.qt_thread_pool else "off, as in the app"
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print_table(
        f"GUI event-loop lateness, 10 ms timer ({args.n_train} images, {args.epochs} epochs, 2 Trainees; "
        f"Qt's GUI thread pool {pool}; load average {load} after it on {os.cpu_count()} CPUs)",
        [
            "scenario",
            "ticks",
            "p50 ms",
            "p99 ms",
            "p99 / idle",
            "max ms",
            "> 16 ms",
            "of those: on CPU",
            "waiting for a core",
            "wall s",
        ],
        rows,
    )
    view.close()


def _row(name: str, summary: dict[str, float], wall_s: float) -> list[object]:
    return [
        name,
        int(summary["ticks"]),
        summary["p50_ms"],
        summary["p99_ms"],
        summary["max_ms"],
        int(summary["late"]),
        _percent(summary.get("late_cpu", float("nan"))),
        _percent(summary.get("late_wait", float("nan"))),
        wall_s,
    ]


def _percent(share: float) -> str:
    return "–" if np.isnan(share) else f"{100 * share:.0f} %"


if __name__ == "__main__":
    main()
