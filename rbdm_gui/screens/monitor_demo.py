"""The live monitor without hardware: a recorded gaze file replayed into a real labeling session.

``python -m rbdm_gui.screens.monitor_demo`` writes a small study in a temporary folder (two annotators who
labelled four synthetic faces before), records a gaze file (fixations on the face, a blink every two
seconds), and runs the app's own session (:class:`rbdm_gui.screens.app.SessionRun`) with the replay driver
and the live monitor open; a hook speaks the labels (one utterance rejected first) and presses the
key. ``--screenshot PATH`` saves the monitor during the last trial, once the running Table 1 with the
Trainer is in, and quits; without it the session runs until its end and the windows stay open.

Run under Xvfb on a machine without a display::

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python -m rbdm_gui.screens.monitor_demo --screenshot m.png
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis.geometry import ScreenGeometry

if TYPE_CHECKING:
    from tracking.recording import StimulusSet

__all__ = ["main", "record_demo_gaze"]

_SPEC = "synthetic:n=1,size=128"
_GEOMETRY = ScreenGeometry(1920, 1080, 24.0, 70.0)
_RATE_HZ = 120.0


def record_demo_gaze(path: Path, *, seconds: float = 30.0, seed: int = 1) -> Path:
    """A gaze sample file on ``_GEOMETRY``: fixations of 150-450 ms on the face, a 250 ms blink every 2 s."""
    from tracking.drivers.replay import write_samples
    from tracking.records import GazeSample

    rng = np.random.default_rng(seed)
    rect = _GEOMETRY.stimulus_rect()
    centre = np.array([rect.x_px + rect.width_px / 2, rect.y_px + rect.height_px / 2])
    samples, t, end = [], 0.0, seconds * 1000.0
    while t < end:
        point = centre + rng.normal(0.0, rect.width_px / 7, size=2)
        stop = t + rng.uniform(150.0, 450.0)
        while t < min(stop, end):
            if 1200.0 <= t % 2000.0 < 1450.0:
                samples.append(GazeSample(t, math.nan, math.nan, valid=False))
            else:
                x, y = point + rng.normal(0.0, 3.0, size=2)
                samples.append(GazeSample(t, float(x), float(y)))
            t += 1000.0 / _RATE_HZ
    write_samples(path, samples)
    return path


def _write_others(study: Path, key: str, stimuli: StimulusSet) -> None:
    """Two annotators who labelled the faces before, looking near the eyes and the mouth."""
    from tracking.recording import stimulus_settings
    from tracking.records import Fixation, PhaseOnsets, Trial
    from tracking.store import SessionStore

    rect = _GEOMETRY.stimulus_rect()
    settings = stimulus_settings(key, stimuli, rect)
    ids = stimuli.ids
    rng = np.random.default_rng(5)
    with SessionStore(study) as store:
        for name in ("ANNA", "BEN"):
            sid = store.create_session(
                store.create_participant(name),
                settings=settings,
                geometry=_GEOMETRY,
                tracker="eyetribe",
                recogniser="pocketsphinx",
                stimulus_order=ids,
            )
            for position, stimulus in enumerate(ids):
                start = 10_000.0 * (position + 1)
                phases = PhaseOnsets(start, start + 500.0, start + 700.0, start + 1200.0, start + 3200.0)
                relative = np.array([(0.35, 0.4), (0.65, 0.4), (0.5, 0.72), (0.5, 0.55)])
                xy = relative * rect.width_px + (rect.x_px, rect.y_px) + rng.normal(0.0, 25.0, size=(4, 2))
                fixations = [
                    Fixation(start + 1300.0 + 350.0 * j, 300.0, float(x), float(y), 36)
                    for j, (x, y) in enumerate(xy)
                ]
                store.record_trial(sid, Trial(position, stimulus, phases, "happy", "speech"), fixations)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--screenshot", type=Path, default=None, help="save the monitor as PNG and quit")
    parser.add_argument("--trials", type=int, default=4, help="faces to label (default 4)")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from rbdm_gui.screens.app import SessionRun
    from rbdm_gui.screens.monitor_session import SessionMonitor
    from rbdm_gui.screens.monitor_view import MonitorPanel
    from rbdm_gui.workflows.settings import StudySettings
    from tracking.drivers import ReplayDriver
    from tracking.protocol import Phase, PhaseOnset
    from tracking.recording import load_stimuli

    app = QApplication.instance() or QApplication([sys.argv[0]])
    folder = Path(tempfile.mkdtemp(prefix="rbdm-monitor-demo-"))
    settings = StudySettings(
        study_path=str(folder / "study.sqlite"),
        participant="CARL",
        stimuli=_SPEC,
        split="test",
        max_stimuli=args.trials,
        seed=0,
        driver="replay",
        recogniser="keyboard",
        detector="idt",
        screen_width_px=_GEOMETRY.width_px,
        screen_height_px=_GEOMETRY.height_px,
        diagonal_in=_GEOMETRY.diagonal_in,
        distance_cm=_GEOMETRY.distance_cm,
        calibrate=False,
    )
    stimuli = load_stimuli(_SPEC, split="test", max_stimuli=args.trials, seed=0)
    _write_others(Path(settings.study_path), settings.stimulus_set_key(), stimuli)
    gaze = record_demo_gaze(folder / "gaze.tsv")
    run = SessionRun(settings, make_driver=lambda s, g: ReplayDriver(gaze, loop=True), show_report=False)
    panel = MonitorPanel()
    panel.resize(1400, 900)
    panel.show()
    monitor = SessionMonitor(panel)
    run.recording_started.connect(lambda: monitor.attach(run))
    last = args.trials - 1
    shot: list[bool] = []

    def speak(onset: PhaseOnset) -> None:  # the participant: one unclear word, then the label, then the key
        if onset.phase is not Phase.STIMULUS or run.labeling_view is None:
            return
        protocol, position = run.labeling_view.protocol, onset.position

        def unclear() -> None:
            if protocol.position == position and protocol.phase is Phase.STIMULUS:
                protocol.set_label(None, source="speech", text="uh well")

        def label() -> None:
            if protocol.position == position and protocol.phase is Phase.STIMULUS:
                word = protocol.labels[1 + position % 3]
                protocol.set_label(word, source="speech", text=word, confidence=0.87)

        QTimer.singleShot(700, unclear)
        QTimer.singleShot(1400, label)
        if position < last or args.screenshot is None:
            QTimer.singleShot(2200, lambda: protocol.advance() if protocol.position == position else None)

    def started() -> None:
        assert run.labeling_view is not None
        run.labeling_view.protocol.phase_started.subscribe(speak)

    run.recording_started.connect(started)
    run.start()
    if args.screenshot is None:
        return int(app.exec())
    deadline = time.monotonic() + 300.0
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
        snapshot = panel.snapshot
        if (
            snapshot is not None
            and snapshot.position == last
            and snapshot.label.label is not None
            and snapshot.table is not None
            and snapshot.table.n_stimuli == last
            and (snapshot.table.model_id is not None or monitor.trainer_path is None)
            and not shot
        ):
            for _ in range(20):  # let the last redraws land
                app.processEvents()
                time.sleep(0.01)
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            panel.grab().save(str(args.screenshot))
            shot.append(True)
            break
    run.finish()
    monitor.close()
    print(f"saved {args.screenshot}" if shot else "no screenshot: the session did not get there in time")
    return 0 if shot else 1


if __name__ == "__main__":
    sys.exit(main())
