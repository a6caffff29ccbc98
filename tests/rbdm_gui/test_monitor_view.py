"""The live monitor on a real session, offscreen: a recorded gaze file replayed through the app's path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow
from pytestqt.qtbot import QtBot

from rbdm_gui.screens.app import SessionRun, StudioApp
from rbdm_gui.screens.monitor_session import SessionMonitor
from rbdm_gui.screens.monitor_view import MonitorPanel, fixation_sizes_px, place_monitor
from rbdm_gui.workflows.monitor_table import TableRequest, participant_table
from rbdm_gui.workflows.settings import StudySettings
from tests.rbdm_gui.test_monitor_model import FAST, recorded_gaze
from tests.tracking import _study
from tracking.drivers import ReplayDriver
from tracking.protocol import Phase
from tracking.recording import load_stimuli, trial_quality
from tracking.store import SessionStore

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.gui

SPEC = "synthetic:n=1,size=64"


def settings_for(tmp_path: Path) -> StudySettings:
    return StudySettings(
        study_path=str(tmp_path / "study.sqlite"),
        participant="P03",
        stimuli=SPEC,
        split="test",
        max_stimuli=3,
        seed=0,
        driver="replay",
        recogniser="keyboard",
        detector="idt",
        screen_width_px=_study.GEOMETRY.width_px,
        screen_height_px=_study.GEOMETRY.height_px,
        diagonal_in=_study.GEOMETRY.diagonal_in,
        distance_cm=_study.GEOMETRY.distance_cm,
        calibrate=False,
    )


def write_others(settings: StudySettings) -> None:
    """P01 and P02 labelled the same three faces before, with known fixations on the image."""
    ids = load_stimuli(SPEC, split="test", max_stimuli=3, seed=0).ids
    stored = {**_study.session_settings(SPEC), "stimulus_set": settings.stimulus_set_key()}
    rng = np.random.default_rng(11)
    with SessionStore(settings.study_path) as store:
        for participant in ("P01", "P02"):
            sid = store.create_session(
                store.create_participant(participant),
                settings=stored,
                geometry=_study.GEOMETRY,
                tracker="mouse",
                recogniser="keyboard",
                stimulus_order=ids,
            )
            for position, stimulus in enumerate(ids):
                points = rng.uniform(4.0, 59.0, size=(4, 2))
                _study._record(store, sid, position, stimulus, points, "happy")


def start(qtbot: QtBot, tmp_path: Path) -> tuple[SessionRun, MonitorPanel, SessionMonitor]:
    settings = settings_for(tmp_path)
    write_others(settings)
    gaze = recorded_gaze(tmp_path / "gaze.tsv")
    run = SessionRun(
        settings, make_driver=lambda s, g: ReplayDriver(gaze, loop=True), show_report=False, timing=FAST
    )
    panel = MonitorPanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 800)
    panel.show()
    monitor = SessionMonitor(panel, trainer_path=None, in_process=False)
    run.recording_started.connect(lambda: monitor.attach(run))
    failures: list[str] = []
    run.failed.connect(failures.append)
    run.start()
    qtbot.waitUntil(
        lambda: bool(failures) or (run.labeling_view is not None and run.labeling_view.isVisible()),
        timeout=20_000,
    )
    assert not failures, failures
    return run, panel, monitor


def label_one(qtbot: QtBot, run: SessionRun) -> None:
    view = run.labeling_view
    assert view is not None
    qtbot.waitUntil(lambda: view.protocol.phase is Phase.STIMULUS, timeout=5000)
    qtbot.wait(500)
    qtbot.keyClick(view, Qt.Key.Key_1)
    qtbot.keyClick(view, Qt.Key.Key_Space)


def test_the_monitor_shows_a_replayed_session_and_its_controls_act_on_it(
    qtbot: QtBot, tmp_path: Path
) -> None:
    run, panel, monitor = start(qtbot, tmp_path)
    protocol = run.labeling_view.protocol  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: protocol.phase is Phase.STIMULUS, timeout=5000)
    qtbot.waitUntil(
        lambda: panel.snapshot is not None and panel.snapshot.phase is Phase.STIMULUS, timeout=2000
    )
    qtbot.wait(300)
    shown = panel.snapshot
    assert shown is not None and shown.phase_text == "stimulus · waiting for label"
    assert (
        panel.phase_label.text().startswith("stimulus · waiting for label")
        and "trial 1 of 3" in panel.phase_label.text()
    )
    assert panel.gaze_view.image_shown and len(panel.gaze_view.trace) > 10
    assert "Hz of 120 Hz nominal" in panel.rate_label.text()

    label_one(qtbot, run)
    qtbot.waitUntil(lambda: protocol.phase is Phase.STIMULUS and protocol.position == 1, timeout=5000)
    qtbot.mouseClick(panel.recalibrate_button, Qt.MouseButton.LeftButton)
    assert run.recalibration_pending
    label_one(qtbot, run)  # the second trial ends: the calibration comes before the third
    qtbot.waitUntil(
        lambda: run.calibration_view is not None and run.calibration_view.isVisible(), timeout=5000
    )
    assert not run.recalibration_pending
    qtbot.keyClick(run.calibration_view, Qt.Key.Key_Escape)  # skip it: the session goes on
    qtbot.waitUntil(lambda: protocol.phase is Phase.STIMULUS and protocol.position == 2, timeout=5000)

    qtbot.waitUntil(lambda: panel.trials_table.rowCount() == 2, timeout=5000)
    qtbot.waitUntil(  # computed after the second trial was stored
        lambda: (
            panel.snapshot is not None
            and panel.snapshot.table is not None
            and panel.snapshot.table.n_stimuli == 2
        ),
        timeout=30_000,
    )
    assert panel.table1.rowCount() == 2  # P03 against P01 and P02
    pairs = {(panel.table1.item(r, 0).text(), panel.table1.item(r, 1).text()) for r in range(2)}
    assert pairs == {("P01", "P03"), ("P02", "P03")}
    expected = participant_table(
        TableRequest(run.settings.study_path, "P03", run.settings.stimulus_set_key())
    )
    for row in expected.table.rows:  # the numbers of the Compare screen, as shown there
        r = [panel.table1.item(k, 0).text() for k in range(2)].index(row.id_1)
        assert panel.table1.item(r, 3).text() == f"{row.values[0]:.3f}"

    panel.trials_table.selectRow(0)
    qtbot.mouseClick(panel.bad_button, Qt.MouseButton.LeftButton)
    assert run.store is not None
    qtbot.waitUntil(lambda: 0 in run.store.flagged_trials(run.session_id), timeout=5000)
    qtbot.waitUntil(lambda: "marked bad" in panel.trials_table.item(0, 7).text(), timeout=2000)
    qtbot.waitUntil(  # Table 1 leaves the flagged trial out at once, before another trial is stored
        lambda: (
            panel.snapshot is not None
            and panel.snapshot.table is not None
            and panel.snapshot.table.n_stimuli == 1
        ),
        timeout=30_000,
    )
    assert panel.trials_table.rowCount() == 2 and protocol.position == 2
    assert "over 1 stimuli" in panel.table1_label.text()

    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.pause_button.text() == "Resume", timeout=3000)
    assert protocol.phase is Phase.PAUSED
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: protocol.phase is not Phase.PAUSED, timeout=3000)
    ended: list[object] = []
    run.ended.connect(ended.append)
    label_one(qtbot, run)
    qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
    assert protocol.phase is Phase.FINISHED

    with SessionStore.open_read_only(Path(run.settings.study_path)) as store:
        stored = trial_quality(store, run.session_id)
        assert store.flagged_trials(run.session_id) == {0: "marked bad by the experimenter"}
    seen = monitor.model.trials  # type: ignore[union-attr]
    assert [s.position for s in seen] == [q.position for q in stored] == [0, 1, 2]
    for summary, quality in zip(seen, stored, strict=True):
        assert (summary.n_samples, summary.n_fixations) == (quality.n_samples, quality.n_fixations)
        assert summary.valid_share == pytest.approx(quality.valid_share)
    monitor.close()


def test_fixations_grow_with_their_duration() -> None:
    sizes = fixation_sizes_px(np.array([0.0, 150.0, 300.0, 10_000.0]))
    np.testing.assert_allclose(sizes, [6.0, 16.0, 26.0, 40.0])


def test_the_monitor_docks_in_the_main_window_with_one_screen(qtbot: QtBot, tmp_path: Path) -> None:
    studio = StudioApp(settings_file=tmp_path / "settings.json")
    qtbot.addWidget(studio.window)
    monitor = studio.open_monitor()
    assert isinstance(studio.monitor_holder, QDockWidget)  # the offscreen platform has one screen
    assert monitor.panel.phase_label.text().startswith("No session is recording")
    assert not monitor.panel.pause_button.isEnabled()
    assert studio.open_monitor() is monitor  # opened once
    monitor.close()


def test_with_one_screen_the_monitor_docks_in_the_main_window(qtbot: QtBot) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    holder = place_monitor(MonitorPanel(), window)
    assert isinstance(holder, QDockWidget) and holder.parent() is window
    assert window.dockWidgetArea(holder) == Qt.DockWidgetArea.RightDockWidgetArea


_TWO_SCREENS = """
import json, sys
from PySide6.QtWidgets import QApplication, QMainWindow
from rbdm_gui.screens.monitor_view import MonitorPanel, MonitorWindow, place_monitor
app = QApplication([])
participant = next(s for s in app.screens() if s.name() == "participant")
main = QMainWindow()
holder = place_monitor(MonitorPanel(), main, participant=participant)
app.processEvents()
print(json.dumps({
    "window": isinstance(holder, MonitorWindow),
    "screen": holder.screen().name(),
    "geometry": holder.geometry().getRect(),
    "available": holder.screen().availableGeometry().getRect(),
}))
"""


def test_with_two_screens_the_monitor_opens_on_the_experimenters(tmp_path: Path) -> None:
    """The lab's layout: the labeling window full screen on the participant's screen, the monitor on the
    other one, whichever Qt lists first. Qt's offscreen platform given two screens plays both."""
    screens = [
        {"name": "experimenter", "x": 0, "y": 0, "width": 1280, "height": 800},
        {"name": "participant", "x": 1280, "y": 0, "width": 1920, "height": 1080},
    ]
    config = tmp_path / "screens.json"
    framed = [{**s, "logicalDpi": 96, "dpr": 1} for s in screens]
    config.write_text(json.dumps({"screens": framed, "windowFrameMargins": False}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}"}
    done = subprocess.run(
        [sys.executable, "-c", _TWO_SCREENS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["window"] and shown["screen"] == "experimenter"
    assert shown["geometry"] == shown["available"] == [0, 0, 1280, 800]
