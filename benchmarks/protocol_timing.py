"""Timing of the labeling protocol (RBDM §5.3.1): intended vs. measured phase durations, dropped frames.

Runs the real full-screen labeling window (:class:`rbdm_gui.labeling_view.LabelingView`) for
``--trials`` trials (default 60) with the mouse simulator as tracker. A hook on the protocol labels
each image 250 ms after it appears and goes on; everything else (frame pacing, onsets stamped
after each paint, trials committed to an SQLite store with their fixations) is the app's own path.
The table reads the stored trials back, as the session report does, and compares each timed phase
with its intended length; the baseline is the intended duration, so the ratio column is
measured / intended.

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
from pathlib import Path

import numpy as np

from benchmarks._report import print_table


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=60, help="number of trials (default 60, at least 50)")
    parser.add_argument(
        "--label-after-ms", type=float, default=250.0, help="image time before the hook labels"
    )
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from analysis.geometry import ScreenGeometry
    from rbdm_gui.labeling_view import LabelingView, screen_refresh, to_qimage
    from tracking.drivers import MouseSimulator
    from tracking.fixations import DETECTORS
    from tracking.protocol import (
        LabelingProtocol,
        Phase,
        PhaseOnset,
        ProtocolTiming,
        phase_durations,
        timing_report,
    )
    from tracking.recording import LabelingSession, gaze_recording, load_stimuli, open_labeling_session
    from tracking.store import SessionStore

    app = QApplication.instance() or QApplication([sys.argv[0]])
    screen = QGuiApplication.primaryScreen()
    refresh_hz, frame_counted = screen_refresh(screen)
    size = screen.size()
    dpr = screen.devicePixelRatio()
    geometry = ScreenGeometry(round(size.width() * dpr), round(size.height() * dpr), 24.0, 70.0)
    stimuli = load_stimuli("synthetic:n=1,size=128", split="test")
    images = {key: to_qimage(image) for key, image in stimuli.images.items()}
    order = [stimuli.ids[k % len(stimuli.ids)] for k in range(args.trials)]
    ids = [f"{stimulus}#{k}" for k, stimulus in enumerate(order)]  # repeat the 8 faces
    images_by_id = {key: images[stimulus] for key, stimulus in zip(ids, order, strict=True)}
    timing = ProtocolTiming()

    with tempfile.TemporaryDirectory() as folder, SessionStore(Path(folder) / "timing.sqlite") as store:
        session_id, _ = open_labeling_session(
            store,
            "BENCH",
            stimulus_order=ids,
            settings={"stimulus_set": "benchmark"},
            geometry=geometry,
            tracker="mouse",
            recogniser="keyboard",
        )
        centre = (geometry.width_px / 2, geometry.height_px / 2)
        driver = MouseSimulator(lambda: centre, rate_hz=120.0)
        driver.connect()
        with gaze_recording(store, session_id, driver, DETECTORS["idt"](geometry)) as recorder:
            protocol = LabelingProtocol(
                ids, timing=timing, refresh_hz=refresh_hz, frame_counted=frame_counted
            )
            session = LabelingSession(store, session_id, protocol, recorder)
            view = LabelingView(session, images_by_id, geometry=geometry, refresh_hz=refresh_hz)

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
            started = time.perf_counter()
            view.start()
            while protocol.phase is not Phase.FINISHED:
                QCoreApplication.processEvents()
                time.sleep(0.0005)
            view.stop()
            driver.stop()
            session.close()
            elapsed_s = time.perf_counter() - started
            view.close()
        driver.close()
        trials = store.trials(session_id)
        frames = list(store.trial_frames(session_id).values())
    platform = QGuiApplication.platformName()
    del app

    report = timing_report(trials, timing=timing, refresh_hz=refresh_hz, frames=frames)
    durations = phase_durations([t.phases for t in trials])
    print(
        f"{len(trials)} trials in {elapsed_s:.1f} s on Qt platform {platform!r}; "
        f"refresh {refresh_hz:.2f} Hz ({'reported by the screen' if frame_counted else 'paced by time'})"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
