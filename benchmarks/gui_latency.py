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

Run (offscreen Qt unless a display is set)::

    .venv/bin/python -m benchmarks.gui_latency
    .venv/bin/python -m benchmarks.gui_latency --n-train 256 --epochs 4
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

__all__ = ["LatencyProbe", "latency_summary", "main"]


class _Relay(QObject):
    """Carries progress records from the training thread to the view (a queued signal)."""

    progress = Signal(object)


class LatencyProbe(QObject):
    """Records the lateness of a periodic precise timer on the GUI thread (event-loop latency).

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
        self._lateness_ms: list[float] = []

    def start(self) -> None:
        """Forget earlier ticks and start measuring."""
        self._lateness_ms = []
        self._last = time.perf_counter()
        self._timer.start(self.interval_ms)

    def stop(self) -> None:
        """Stop measuring."""
        self._timer.stop()

    @property
    def lateness_ms(self) -> NDArray[np.float64]:
        """Lateness of every tick so far, in milliseconds (negative when a tick came early)."""
        return np.asarray(self._lateness_ms, dtype=np.float64)

    def _tick(self) -> None:
        now = time.perf_counter()
        self._lateness_ms.append((now - self._last) * 1000.0 - self.interval_ms)
        self._last = now


def latency_summary(lateness_ms: NDArray[np.float64]) -> dict[str, float]:
    """Ticks, median, 99th percentile and maximum of the lateness (ms; never below 0)."""
    late = np.maximum(np.asarray(lateness_ms, dtype=np.float64), 0.0)
    if late.size == 0:
        return {"ticks": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {
        "ticks": float(late.size),
        "p50_ms": float(np.percentile(late, 50)),
        "p99_ms": float(np.percentile(late, 99)),
        "max_ms": float(late.max()),
    }


def _request(runs_dir: Path, args: argparse.Namespace) -> object:
    from analysis.experiment import ExperimentConfig, new_run_dir
    from analysis.trainee import TrainingOptions
    from rbdm_gui.cli.commands_models import DEFAULT_TRAINER
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
    return latency_summary(probe.lateness_ms), time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-train", type=int, default=128, help="training images (default: 128)")
    parser.add_argument("--n-val", type=int, default=64, help="validation images (default: 64)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per Trainee (default: 3)")
    parser.add_argument("--idle-s", type=float, default=5.0, help="length of the idle baseline (default: 5)")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    from PySide6.QtWidgets import QApplication

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
        rows.append(
            [name, int(summary["ticks"]), summary["p50_ms"], summary["p99_ms"], summary["max_ms"], wall_s]
        )
    baseline = rows[0][3]
    for row in rows:
        row.append(f"{float(row[3]) / max(float(baseline), 1e-3):.1f}×")  # type: ignore[arg-type]
    print_table(
        f"GUI event-loop lateness, 10 ms timer ({args.n_train} images, {args.epochs} epochs, 2 Trainees)",
        ["scenario", "ticks", "p50 ms", "p99 ms", "max ms", "wall s", "p99 / idle"],
        rows,
    )
    view.close()


if __name__ == "__main__":
    main()
