"""Screenshots of the desktop app's screens, taken under Xvfb, for docs/screenshots/.

Run from the repository root::

    .venv/bin/python scripts/screenshots.py            # starts itself under xvfb-run when no X display is set
    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots.py
    .venv/bin/python scripts/screenshots.py experiments prototypes    # only these parts

The parts are sessions (setup, labeling, report, calibration), comparison, experiments and prototypes.

It writes comparison.png (two simulated annotators on eight faces against the default Trainer),
setup.png, labeling_cross.png, labeling_stimulus.png (with a recognised label),
labeling_unrecognised.png, labeling_paused.png, session_report.png, calibration_intro.png,
calibration_target.png, calibration_result.png, comparison_table1.png, experiments.png (a small real
run of the seven Trainees) and prototypes.png (synthetic action-unit sequences).
The live monitor's monitor.png comes from ``python -m rbdm_gui.screens.monitor_demo --screenshot``.
Settings and the study file go to a temporary folder; the gaze comes from the mouse simulator.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rbdm_gui.screens.app import StudioApp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
SCREEN = "1920x1080x24"
PARTS = ("sessions", "comparison", "experiments", "prototypes")  # what a run photographs, in this order


def _under_xvfb() -> None:
    """Re-run this script inside xvfb-run when there is no X display."""
    if os.environ.get("DISPLAY") or os.environ.get("RBDM_SCREENSHOTS_CHILD"):
        return
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        sys.exit("xvfb-run is missing: install the 'xvfb' package (scripts/install-system-deps.sh).")
    env = {**os.environ, "RBDM_SCREENSHOTS_CHILD": "1", "QT_QPA_PLATFORM": "xcb"}
    command = [xvfb_run, "-a", "-s", f"-screen 0 {SCREEN}", sys.executable, __file__, *sys.argv[1:]]
    sys.exit(subprocess.run(command, env=env, check=False).returncode)


def main() -> None:
    _under_xvfb()
    parts = _chosen_parts(sys.argv[1:])
    sys.path.insert(0, str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="rbdm-screens-"))
    os.environ["RBDM_STUDIO_CONFIG_DIR"] = str(folder / "config")
    os.environ["RBDM_STUDIO_DATA_DIR"] = str(folder / "data")

    from PySide6.QtCore import QCoreApplication, QElapsedTimer
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication.instance() or QApplication([sys.argv[0]])
    OUT.mkdir(parents=True, exist_ok=True)

    def wait_until(condition: Callable[[], bool], timeout_ms: int = 20_000) -> None:
        clock = QElapsedTimer()
        clock.start()
        while not condition():
            if clock.elapsed() > timeout_ms:
                raise TimeoutError("the screen did not reach the state to photograph")
            QCoreApplication.processEvents()

    def save(widget: QWidget, name: str) -> None:
        QCoreApplication.processEvents()
        widget.grab().save(str(OUT / name))
        print(f"wrote {OUT / name}")

    studio = _sessions(folder, save, wait_until) if "sessions" in parts else None
    if "comparison" in parts:
        _comparison(folder, save, wait_until)
    if "experiments" in parts:
        _experiments(save, wait_until)
    if "prototypes" in parts:
        _prototypes(save, wait_until)
    if studio is not None:
        studio.window.close()
    del app
    shutil.rmtree(folder, ignore_errors=True)


def _chosen_parts(args: list[str]) -> set[str]:
    """The parts named on the command line (all when none is named)."""
    unknown = set(args) - set(PARTS)
    if unknown:
        sys.exit(f"unknown part(s) {sorted(unknown)!r}; choose from {list(PARTS)!r} (none: all).")
    return set(args) or set(PARTS)


def _sessions(folder: Path, save: Callable[..., None], wait_until: Callable[..., None]) -> StudioApp:
    """Study setup, a labeling session with the mouse simulator, its report, and a validation.

    Returns the app, whose window is closed at the end of the script.
    """
    from PySide6.QtGui import QGuiApplication

    from analysis.geometry import ScreenGeometry
    from rbdm_gui.screens.app import SessionRun, StudioApp
    from rbdm_gui.screens.calibration_view import CalibrationView
    from rbdm_gui.workflows.settings import KEYBOARD_ONLY, StudySettings
    from tracking.drivers import MouseSimulator
    from tracking.fixations import DETECTORS
    from tracking.protocol import Phase
    from tracking.recording import SpokenLabel, gaze_recording
    from tracking.speech import Recognition
    from tracking.store import SessionStore
    from tracking.validation import ValidationProcedure

    screen = QGuiApplication.primaryScreen()
    size = screen.size()
    geometry = ScreenGeometry(size.width(), size.height(), 24.0, 70.0)

    # --- setup ----------------------------------------------------------------------------------
    studio = StudioApp()
    studio.window.resize(1280, 800)  # the smallest window the screens are laid out for
    studio.window.show()
    wait_until(lambda: studio.window.isVisible() and studio.setup_view is not None)
    setup = studio.setup_view
    assert setup is not None
    studio.window.hide()  # photographed after the first session, with its participant listed

    # --- labeling -------------------------------------------------------------------------------
    settings = StudySettings(
        participant="P01",
        stimuli="synthetic:n=1,size=512",
        max_stimuli=3,
        seed=7,
        recogniser=KEYBOARD_ONLY,
        screen_width_px=geometry.width_px,
        screen_height_px=geometry.height_px,
        diagonal_in=geometry.diagonal_in,
        distance_cm=geometry.distance_cm,
        calibrate=False,
    )
    centre = (geometry.width_px / 2, geometry.height_px / 2)
    run = SessionRun(
        settings, make_driver=lambda s, g: MouseSimulator(lambda: centre), parent_window=studio.window
    )
    run.start()
    wait_until(lambda: run.labeling_view is not None and run.labeling_view.isVisible())
    view = run.labeling_view
    assert view is not None
    protocol = view.protocol
    wait_until(lambda: protocol.phase is Phase.CROSS)
    save(view, "labeling_cross.png")
    wait_until(lambda: protocol.phase is Phase.STIMULUS)
    view.recognitions.posted.emit(SpokenLabel(0, Recognition("happy", "happy", 0.93, 0.0, 0.0)))
    wait_until(lambda: protocol.choice.label == "happy")
    save(view, "labeling_stimulus.png")
    protocol.advance()
    wait_until(lambda: protocol.phase is Phase.STIMULUS and protocol.position == 1)
    view.recognitions.posted.emit(SpokenLabel(1, Recognition(None, "hoppy", 0.41, 0.0, 0.0)))
    wait_until(lambda: protocol.choice.unrecognised)
    save(view, "labeling_unrecognised.png")
    view.pause()
    wait_until(lambda: view.resume_button.isVisible())
    save(view, "labeling_paused.png")
    view.quit_button.click()
    wait_until(lambda: run.report_dialog is not None and run.report_dialog.isVisible())
    assert run.report_dialog is not None
    save(run.report_dialog, "session_report.png")
    run.report_dialog.close()
    setup.set_settings(dataclasses.replace(settings, participant="P02", recogniser="pocketsphinx"))
    setup.refresh_participants()
    studio.window.show()
    # 1280 x 800 below the menu bar (Session → Live monitor), so that the form is seen to its last row
    studio.window.resize(1280, 800 + studio.window.menuBar().sizeHint().height())
    save(studio.window, "setup.png")
    studio.window.hide()

    # --- calibration/validation ---------------------------------------------------------------------
    holder: dict[str, CalibrationView] = {}

    def near_target() -> tuple[float, float] | None:
        calibration = holder.get("view")
        procedure = calibration._procedure if calibration is not None else None
        target = procedure.current_target if procedure is not None else None
        return None if target is None else (target[0] + 14.0, target[1] - 6.0)

    with SessionStore(folder / "data" / "study.sqlite") as store:
        session_id = store.sessions()[-1].session_id
        driver = MouseSimulator(near_target, rate_hz=60.0, noise_std_px=2.0)
        driver.connect()
        with gaze_recording(store, session_id, driver, DETECTORS["idt"](geometry)) as recorder:
            calibration = CalibrationView(
                recorder,
                store,
                session_id,
                geometry=geometry,
                refresh_hz=60.0,
                make_procedure=lambda g: ValidationProcedure(g, show_ms=600.0, settle_ms=200.0),
            )
            holder["view"] = calibration
            calibration.setGeometry(screen.geometry())
            calibration.showFullScreen()
            save(calibration, "calibration_intro.png")
            calibration.begin()
            wait_until(lambda: calibration._procedure is not None and calibration._shown_target is not None)
            wait_until(lambda: calibration._shown_target == calibration._procedure.targets[2])  # type: ignore[union-attr]
            save(calibration, "calibration_target.png")
            wait_until(lambda: calibration.result is not None)
            save(calibration, "calibration_result.png")
            calibration.close()
        driver.close()
    return studio


def _comparison(folder: Path, save: Callable[..., None], wait_until: Callable[..., None]) -> None:
    """The comparison screen on a study recorded with simulated annotators (RBDM §5.3.2, Figure 7).

    Two annotators look at eight synthetic faces (one per label; ``simulate_fixations``, not a
    person), their fixations stored in screen pixels as a labeling session stores them.
    """
    import zlib

    import numpy as np

    from analysis.datasets.synthetic_faces import make_face, simulate_fixations
    from analysis.geometry import ScreenGeometry
    from analysis.labels import LABELS
    from rbdm_gui.screens.comparison_view import ComparisonView
    from rbdm_gui.workflows.session import session_settings
    from rbdm_gui.workflows.settings import KEYBOARD_ONLY, StudySettings
    from tracking.protocol import ProtocolTiming, stimulus_order
    from tracking.recording import StimulusSet
    from tracking.records import Fixation, PhaseOnsets, Trial
    from tracking.store import SessionStore

    geometry, spec = ScreenGeometry(), "synthetic:n=1,size=512"
    settings = StudySettings(stimuli=spec, split="test", recogniser=KEYBOARD_ONLY, calibrate=False)
    stored = session_settings(
        settings, StimulusSet(spec, "test", {}), timing=ProtocolTiming(), refresh_hz=60.0, frame_counted=True
    )
    rect, rng = geometry.stimulus_rect(), np.random.default_rng(5)
    faces = {
        f"synthetic/test/{k}": make_face(
            label, size=512, rgb=True, rng=np.random.default_rng([0, zlib.crc32(b"test"), k])
        )
        for k, label in enumerate(LABELS)
    }  # the faces of the synthetic loader's test split, drawn again to know their regions
    path = folder / "data" / "compare.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with SessionStore(path) as store:
        for seed, pseudonym in enumerate(("P01", "P02"), start=1):
            order = stimulus_order(list(faces), seed=seed)
            sid = store.create_session(
                store.create_participant(pseudonym),
                settings=stored,
                geometry=geometry,
                tracker="eyetribe",
                recogniser=KEYBOARD_ONLY,
                stimulus_order=order,
            )
            for position, stimulus in enumerate(order):
                points = simulate_fixations(faces[stimulus], n_fixations=int(rng.integers(8, 16)), rng=rng)
                screen = (points + 0.5) * rect.width_px / 512 + np.array([rect.x_px, rect.y_px]) - 0.5
                start = 5000.0 * (position + 1)
                fixations = [
                    Fixation(start + 1300 + 250 * j, 220.0, float(x), float(y), 60)
                    for j, (x, y) in enumerate(screen)
                ]
                phases = PhaseOnsets(start, start + 500, start + 700, start + 1200, start + 4500)
                trial = Trial(
                    position, stimulus, phases, faces[stimulus].label, "speech", faces[stimulus].label, 0.9
                )
                store.record_trial(sid, trial, fixations)
    view = ComparisonView(study_path=path)
    view.resize(1600, 1000)
    view.show()
    wait_until(lambda: view.model is not None and not view.busy, timeout_ms=120_000)
    view.select_stimulus("synthetic/test/1")
    wait_until(
        lambda: not view.busy and view.shown is not None and view.shown.comparison.stimulus_id.endswith("/1")
    )
    save(view, "comparison.png")
    view.tabs.setCurrentIndex(1)
    save(view, "comparison_table1.png")
    view.close()


def _experiments(save: Callable[..., None], wait_until: Callable[..., None]) -> None:
    """The Experiments screen after a small real run: the seven Trainees of RBDM §5.5 (small-CNN Trainees
    on 400 synthetic faces, 6 epochs, switch after 3), curves, results table and a confusion matrix."""
    from rbdm_gui.screens.experiment_view import ExperimentView

    view = ExperimentView()  # runs go to the temporary data folder
    view.resize(1600, 1000)
    view.show()
    view.form.dataset_edit.setText("synthetic:n=50")
    view.form.n_train_spin.setValue(400)
    view.form.n_val_spin.setValue(200)
    view.form.architecture_combo.setCurrentText("small_cnn")
    view.form.epochs_spin.setValue(6)
    view.form.switch_spin.setValue(3)
    view.form.eval_spin.setValue(5)
    view.start_run()
    wait_until(lambda: not view.runner.running, timeout_ms=600_000)
    wait_until(lambda: not view.busy and len(view.model.shown) == 1)
    save(view, "experiments.png")
    view.close()


def _prototypes(save: Callable[..., None], wait_until: Callable[..., None]) -> None:
    """The Temporal prototypes screen after Compute (synthetic): 24 AU sequences through the shipped
    action unit model (TP §3.2–§3.5), a surprise sequence with its second stage enlarged."""
    from PySide6.QtCore import QCoreApplication

    from rbdm_gui.screens.prototypes_view import PrototypesView

    view = PrototypesView()
    view.resize(1600, 1160)
    view.show()
    view.start_compute()
    wait_until(lambda: view.result is not None, timeout_ms=600_000)
    assert view.result is not None
    ids = [sequence.id for sequence in view.result.sequences]
    view.select_sequence(ids.index("surprise/003") if "surprise/003" in ids else 0)
    view.select_stage(1)
    QCoreApplication.processEvents()
    height = max(1160, view.minimumSizeHint().height())  # the strip of the sequence shown sets it
    view.resize(1600, height)
    wait_until(lambda: view.height() == height)
    save(view, "prototypes.png")
    view.close()


if __name__ == "__main__":
    main()
