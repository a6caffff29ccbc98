"""Timing of the labeling protocol (RBDM §5.3.1): intended vs. measured phase durations, dropped frames.

Runs the real full-screen labeling window (:class:`rbdm_gui.screens.labeling_view.LabelingView`) for
``--trials`` trials (default 60) with the mouse simulator as tracker. A hook on the protocol labels
each image 250 ms after it appears and goes on; everything else (frame pacing, onsets stamped
after each paint, trials committed to an SQLite store with their fixations) is the app's own path.
The table reads the stored trials back, as the session report does, and compares each timed phase
with its intended length; the baseline is the intended duration, so the ratio column is
measured / intended.

``--monitor`` runs the session twice in one process: without, then with the experimenter's live
monitor (:mod:`rbdm_gui.screens.monitor_view`) open and redrawing at its full rate (30 Hz) from its model fed
by the session, and the running RBDM Table 1 recomputed in its worker process after every stored
trial (against a second, simulated annotator of the same stimuli, and the Trainer in ``assets/``
when there is one). It prints both tables, the monitor's runs against the ones without it, and each
run's figures (``--repeat N`` alternates N runs of each: a shared machine varies between runs).
Where Qt reports a second screen the monitor goes there, as in the lab; under Xvfb there is one, which
the monitor's window shares with the full-screen labeling window (it paints all the same: the redraw
count says so). ``--monitor-rate`` sets its redraws per second, ``--no-table`` leaves out its Table 1
worker (a diagnostic). It paints as the app does, without Qt's GUI thread pool
(:func:`rbdm_gui.screens.painting.paint_on_gui_thread`); ``--qt-thread-pool`` keeps the pool::

    nice -n -10 xvfb-run -s "-screen 0 1920x1080x24" \\
        .venv/bin/python -m benchmarks.protocol_timing --monitor --repeat 2

Run (offscreen Qt unless a display is set; under Xvfb for a real X server)::

    .venv/bin/python -m benchmarks.protocol_timing
    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python -m benchmarks.protocol_timing
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import print_table

_SPEC = "synthetic:n=8,size=128"  # 64 distinct test faces


@dataclass
class _Result:
    """One run of the session: what was stored and how the monitor (if any) did."""

    trials: list[Any]
    frames: list[Any]
    elapsed_s: float
    redraws: int = 0
    redraw_ms: float = float("nan")
    redraw_p99_ms: float = float("nan")
    tables: int = 0


def _rows(durations: np.ndarray, intended_ms: list[float], refresh_hz: float) -> list[list[object]]:  # type: ignore[type-arg]
    period_ms = 1000.0 / refresh_hz
    rows: list[list[object]] = []
    for k, (name, intended) in enumerate(zip(("blank", "cross", "second blank"), intended_ms, strict=True)):
        measured = durations[:, k]
        error = measured - intended
        rows.append(
            [
                name,
                intended,
                float(measured.mean()),
                float(measured.std(ddof=1)),
                float(np.abs(error).max()),
                float(np.abs(error).max() / period_ms),
                float(np.abs(error).mean() / period_ms),
                f"{measured.mean() / intended:.4f}×",
            ]
        )
    return rows


def _record_other_annotator(store: Any, ids: list[str], settings: dict[str, Any], geometry: Any) -> None:
    """A second annotator's trials on the same stimuli (fixations around the image centre), for Table 1."""
    from tracking.records import Fixation, PhaseOnsets, Trial

    rng = np.random.default_rng(0)
    rect = geometry.stimulus_rect()
    session_id = store.create_session(
        store.create_participant("OTHER"),
        settings=settings,
        geometry=geometry,
        tracker="mouse",
        recogniser="keyboard",
        stimulus_order=ids,
    )
    centre = np.array([rect.x_px + rect.width_px / 2, rect.y_px + rect.height_px / 2])
    for position, stimulus in enumerate(ids):
        start = 10_000.0 * (position + 1)
        phases = PhaseOnsets(start, start + 500.0, start + 700.0, start + 1200.0, start + 3200.0)
        points = centre + rng.normal(0.0, rect.width_px / 8, size=(5, 2))
        fixations = [
            Fixation(start + 1300.0 + 300.0 * j, 250.0, float(x), float(y), 30)
            for j, (x, y) in enumerate(points)
        ]
        trial = Trial(position, stimulus, phases, "happy", "keyboard", response_time_ms=1500.0)
        store.record_trial(session_id, trial, fixations)


class _Monitor:
    """The live monitor on the benchmark's session: model, panel, 30 Hz timer, Table 1 worker."""

    def __init__(self, run: Any, *, screen: Any, rate_hz: float, table: bool = True) -> None:
        from PySide6.QtCore import QEvent, QObject

        from rbdm_gui.screens.monitor_session import SessionMonitor
        from rbdm_gui.screens.monitor_view import MonitorPanel
        from rbdm_gui.workflows.assets import DEFAULT_TRAINER

        self.panel = MonitorPanel()
        trainer = DEFAULT_TRAINER if DEFAULT_TRAINER.is_file() else None
        self.monitor = SessionMonitor(self.panel, trainer_path=trainer, rate_hz=rate_hz)
        if not table:  # a diagnostic: the monitor without its Table 1 worker
            self.monitor._runner.start = lambda: None  # type: ignore[method-assign]
            self.monitor._runner.request = lambda request: None  # type: ignore[method-assign]
        self.tables = 0
        self.redraw_ms: list[float] = []
        tick = self.monitor.tick

        def timed_tick() -> None:  # the whole redraw: model update, Table 1 poll, widgets
            started = time.perf_counter()
            before = self.panel.snapshot.table if self.panel.snapshot is not None else None
            tick()
            self.redraw_ms.append(1000.0 * (time.perf_counter() - started))
            after = self.panel.snapshot.table if self.panel.snapshot is not None else None
            self.tables += after is not before and after is not None

        self.monitor.tick = timed_tick  # type: ignore[method-assign]  # what frames and the timer call

        class _Paints(QObject):
            count = 0

            def eventFilter(self, watched: Any, event: Any) -> bool:
                if event.type() == QEvent.Type.Paint:
                    _Paints.count += 1
                return False

        self.paints = _Paints()
        self.panel.gaze_view.installEventFilter(self.paints)
        if screen is not None:
            self.panel.setScreen(screen)
            self.panel.setGeometry(screen.availableGeometry())
        else:
            self.panel.resize(1280, 800)
        self.panel.show()
        self.monitor.attach(run)

    def close(self) -> None:
        self.monitor.close()
        self.panel.close()


def _run(args: argparse.Namespace, *, monitor: bool) -> _Result:
    from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
    from PySide6.QtGui import QGuiApplication

    from analysis.geometry import ScreenGeometry
    from rbdm_gui.screens.labeling_view import LabelingView, screen_refresh, to_qimage
    from tracking.drivers import MouseSimulator
    from tracking.protocol import LabelingProtocol, Phase, PhaseOnset, ProtocolTiming
    from tracking.recording import (
        LabelingSession,
        gaze_recording,
        load_stimuli,
        open_labeling_session,
        stimulus_settings,
    )
    from tracking.store import SessionStore

    screen = QGuiApplication.primaryScreen()
    refresh_hz, frame_counted = screen_refresh(screen)
    size = screen.size()
    dpr = screen.devicePixelRatio()
    geometry = ScreenGeometry(round(size.width() * dpr), round(size.height() * dpr), 24.0, 70.0)
    stimuli = load_stimuli(_SPEC, split="test", max_stimuli=args.trials)
    images = {key: to_qimage(image) for key, image in stimuli.images.items()}
    ids = list(stimuli.ids)
    settings = stimulus_settings("benchmark", stimuli, geometry.stimulus_rect())
    timing = ProtocolTiming()
    result = _Result([], [], 0.0)

    with tempfile.TemporaryDirectory() as folder, SessionStore(Path(folder) / "timing.sqlite") as store:
        if monitor:
            _record_other_annotator(store, ids, settings, geometry)
        session_id, _ = open_labeling_session(
            store,
            "BENCH",
            stimulus_order=ids,
            settings=settings,
            geometry=geometry,
            tracker="mouse",
            recogniser="keyboard",
        )
        centre = (geometry.width_px / 2, geometry.height_px / 2)
        driver = MouseSimulator(lambda: centre, rate_hz=120.0)
        driver.connect()
        from rbdm_gui.workflows.monitor_model import FixationTap
        from tracking.fixations import DETECTORS

        tap = FixationTap(DETECTORS["idt"](geometry))  # what the app records with (a no-op without listeners)
        with gaze_recording(store, session_id, driver, tap) as recorder:
            protocol = LabelingProtocol(
                ids, timing=timing, refresh_hz=refresh_hz, frame_counted=frame_counted
            )
            session = LabelingSession(store, session_id, protocol, recorder)
            view = LabelingView(session, images, geometry=geometry, refresh_hz=refresh_hz)

            class _Run(QObject):  # what the monitor reads of rbdm_gui.screens.app.SessionRun
                ended = Signal(object)
                failed = Signal(str)

            run = _Run()
            run.__dict__.update(
                session=session,
                recorder=recorder,
                driver=driver,
                store=store,
                session_id=session_id,
                start_position=0,
                images=images,
                labeling_view=view,
                fixation_tap=tap,
                settings=argparse.Namespace(participant="BENCH", stimulus_set_key=lambda: "benchmark"),
            )

            def label_later(onset: PhaseOnset) -> None:  # the test hook: a key label, then go on
                if onset.phase is Phase.STIMULUS:
                    position = onset.position

                    def answer() -> None:
                        if protocol.phase is Phase.STIMULUS and protocol.position == position:
                            protocol.key_label(1 + position % len(protocol.labels))
                            protocol.advance()

                    QTimer.singleShot(round(args.label_after_ms), answer)

            protocol.phase_started.subscribe(label_later)
            view.setGeometry(screen.geometry())
            view.showFullScreen()
            others = [s for s in QGuiApplication.screens() if s is not screen]
            watcher = (
                _Monitor(
                    run,
                    screen=others[0] if others else None,
                    rate_hz=args.monitor_rate,
                    table=not args.no_table,
                )
                if monitor
                else None
            )
            started = time.perf_counter()
            view.start()
            while protocol.phase is not Phase.FINISHED:
                QCoreApplication.processEvents()
                time.sleep(0.0005)
            view.stop()
            driver.stop()
            session.close()
            result.elapsed_s = time.perf_counter() - started
            if watcher is not None:
                watcher.monitor.tick()
                redraws = np.array(watcher.redraw_ms)
                result.redraws = watcher.paints.count
                result.redraw_ms = float(np.median(redraws)) if len(redraws) else float("nan")
                result.redraw_p99_ms = float(np.percentile(redraws, 99)) if len(redraws) else float("nan")
                result.tables = watcher.tables
                watcher.close()
            view.close()
        driver.close()
        result.trials = store.trials(session_id)
        result.frames = list(store.trial_frames(session_id).values())
    return result


def _report(
    title: str, result: _Result, args: argparse.Namespace, refresh_hz: float, frame_counted: bool
) -> None:
    from tracking.protocol import Phase, ProtocolTiming, phase_durations, timing_report

    timing = ProtocolTiming()
    trials, frames = result.trials, result.frames
    report = timing_report(trials, timing=timing, refresh_hz=refresh_hz, frames=frames)
    durations = phase_durations([t.phases for t in trials])
    print(
        f"\n{title}: {len(trials)} trials in {result.elapsed_s:.1f} s; refresh {refresh_hz:.2f} Hz "
        f"({'reported by the screen' if frame_counted else 'paced by time'})"
    )
    print_table(
        f"Protocol timing over {len(trials)} trials: measured vs intended (RBDM §5.3.1)",
        [
            "phase",
            "intended ms",
            "mean ms",
            "sd ms",
            "max |err| ms",
            "max |err| frames",
            "mean |err| frames",
            "ratio",
        ],
        _rows(durations, [timing.blank_ms, timing.cross_ms, timing.second_blank_ms], refresh_hz),
    )
    stimulus = report.phase(Phase.STIMULUS)
    print(
        f"\nimage phase (self-paced, labelled after {args.label_after_ms:.0f} ms): "
        f"mean {stimulus.mean_ms:.1f} ms, sd {stimulus.sd_ms:.1f} ms"
    )
    print(
        f"frames: {report.n_frames} presented, {report.dropped_frames} dropped (interval > 1.5 periods) "
        f"in {report.trials_with_drops} of {len(trials)} trials "
        f"({100.0 * report.dropped_frames / max(1, report.n_frames):.2f} % of frames); "
        f"longest frame interval {max(f.max_frame_interval_ms for f in frames):.1f} ms"
    )
    if result.redraws:
        print(
            f"monitor: {result.redraws} redraws of its gaze view "
            f"({result.redraws / result.elapsed_s:.1f} per s), "
            f"a redraw tick {result.redraw_ms:.2f} ms median, {result.redraw_p99_ms:.2f} ms p99; "
            f"Table 1 recomputed and shown {result.tables} times"
        )


def _compare(without: _Result, with_monitor: _Result, refresh_hz: float) -> None:
    from tracking.protocol import ProtocolTiming, phase_durations, timing_report

    timing = ProtocolTiming()
    intended = [timing.blank_ms, timing.cross_ms, timing.second_blank_ms]
    rows: list[list[object]] = []
    measured = []
    for result in (without, with_monitor):
        durations = phase_durations([t.phases for t in result.trials])[:, :3]
        errors = np.abs(durations - np.array(intended))
        report = timing_report(result.trials, timing=timing, refresh_hz=refresh_hz, frames=result.frames)
        measured.append(
            (
                float(errors.max()),
                float(errors.mean()),
                report.dropped_frames,
                float(max(f.max_frame_interval_ms for f in result.frames)),
            )
        )
    names = ("max |phase error| ms", "mean |phase error| ms", "dropped frames", "longest frame interval ms")
    for k, name in enumerate(names):
        base, other = measured[0][k], measured[1][k]
        ratio = f"{other / base:.2f}×" if base else ("1.00×" if other == base else "–")
        rows.append([name, base, other, ratio])
    print_table(
        "The live monitor against no monitor (same run)",
        ["measure", "without", "with monitor", "ratio"],
        rows,
    )


def _pooled(results: list[_Result]) -> _Result:
    """The trials and frames of several runs together; the monitor's figures over all of them."""
    ticks = [r.redraw_ms for r in results if r.redraws]
    return _Result(
        trials=[t for r in results for t in r.trials],
        frames=[f for r in results for f in r.frames],
        elapsed_s=sum(r.elapsed_s for r in results),
        redraws=sum(r.redraws for r in results),
        redraw_ms=float(np.median(ticks)) if ticks else float("nan"),
        redraw_p99_ms=max((r.redraw_p99_ms for r in results if r.redraws), default=float("nan")),
        tables=sum(r.tables for r in results),
    )


def _per_run(runs: dict[bool, list[_Result]], refresh_hz: float) -> None:
    """Each run's mean phase error and dropped frames: how much runs differ on this machine anyway."""
    from tracking.protocol import ProtocolTiming, phase_durations

    timing = ProtocolTiming()
    intended = np.array([timing.blank_ms, timing.cross_ms, timing.second_blank_ms])
    rows: list[list[object]] = []
    for k, (plain, watched) in enumerate(zip(runs[False], runs[True], strict=True), start=1):
        row: list[object] = [k]
        for result in (plain, watched):
            errors = np.abs(phase_durations([t.phases for t in result.trials])[:, :3] - intended)
            row += [float(errors.mean()), sum(f.dropped_frames for f in result.frames)]
        rows.append(row)
    print_table(
        "Run by run (alternating)",
        ["run", "mean |err| ms without", "dropped without", "mean |err| ms with", "dropped with"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=60, help="number of trials (default 60, at most 64)")
    parser.add_argument(
        "--label-after-ms", type=float, default=250.0, help="image time before the hook labels"
    )
    parser.add_argument(
        "--monitor",
        action="store_true",
        help="run twice: without, then with the live monitor drawing at full rate; compare",
    )
    parser.add_argument(
        "--monitor-rate", type=float, default=30.0, help="the monitor's redraws per second (default 30)"
    )
    parser.add_argument("--no-table", action="store_true", help="the monitor without its Table 1 worker")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --monitor: alternate the two runs this many times (pooled; a busy machine varies)",
    )
    parser.add_argument(
        "--qt-thread-pool",
        action="store_true",
        help="paint with Qt's GUI thread pool (the app switches it off: rbdm_gui.screens.painting)",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from rbdm_gui.screens.painting import GUI_THREADPOOL_VARIABLE, paint_on_gui_thread

    if args.qt_thread_pool:
        os.environ.pop(GUI_THREADPOOL_VARIABLE, None)  # on even where the shell switched it off
    else:
        paint_on_gui_thread()  # as the app does, before the QApplication

    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from rbdm_gui.screens.labeling_view import screen_refresh

    app = QApplication.instance() or QApplication([sys.argv[0]])
    refresh_hz, frame_counted = screen_refresh(QGuiApplication.primaryScreen())
    platform = QGuiApplication.platformName()
    screens = len(QGuiApplication.screens())
    runs: dict[bool, list[_Result]] = {False: [], True: []}
    for _ in range(max(1, args.repeat) if args.monitor else 1):
        for monitor in (False, True) if args.monitor else (False,):
            runs[monitor].append(_run(args, monitor=monitor))
    without = _pooled(runs[False])
    with_monitor = _pooled(runs[True]) if args.monitor else None
    del app

    repeats = f"; {len(runs[True])} runs of each, alternating" if args.monitor else ""
    pool = "with Qt's GUI thread pool" if args.qt_thread_pool else "painting on the GUI thread (as the app)"
    print(f"Qt platform {platform!r}, {screens} screen{'s' if screens != 1 else ''}{repeats}, {pool}")
    _report("without the monitor", without, args, refresh_hz, frame_counted)
    if with_monitor is not None:
        _report("with the live monitor", with_monitor, args, refresh_hz, frame_counted)
        _compare(without, with_monitor, refresh_hz)
        _per_run(runs, refresh_hz)
    return 0


if __name__ == "__main__":
    sys.exit(main())
