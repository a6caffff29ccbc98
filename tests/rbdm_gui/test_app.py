"""The app shell: main window navigation, settings files, background tasks, driver options."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from analysis.geometry import ScreenGeometry
from rbdm_gui.screens.app import StudioApp, default_pages
from rbdm_gui.screens.main_window import MainWindow
from rbdm_gui.screens.setup_view import SetupView
from rbdm_gui.screens.workers import run_task
from rbdm_gui.workflows.settings import (
    StudySettings,
    build_driver,
    data_dir,
    driver_options,
    load_settings,
    parse_option,
    save_settings,
)
from tracking.drivers import DRIVERS, MouseSimulator

pytestmark = pytest.mark.gui


def test_the_navigation_builds_each_view_once_when_chosen(qtbot: QtBot) -> None:
    built: list[str] = []

    def page(title: str) -> QLabel:
        built.append(title)
        return QLabel(title)

    window = MainWindow([("One", lambda: page("One")), ("Two", lambda: page("Two"))])
    qtbot.addWidget(window)
    assert window.titles == ["One", "Two"] and built == ["One"]
    second = window.show_page("Two")
    assert isinstance(second, QLabel) and second.text() == "Two" and window.stack.currentWidget() is second
    window.show_page("One")
    window.show_page("Two")
    assert built == ["One", "Two"]
    window.add_page("Three", lambda: page("Three"))
    assert window.titles[-1] == "Three" and window.view("Three") is None
    with pytest.raises(ValueError, match="exists already"):
        window.add_page("One", lambda: page("One"))


def test_the_app_opens_on_the_study_setup_with_the_embedded_default(qtbot: QtBot) -> None:
    studio = StudioApp()
    qtbot.addWidget(studio.window)
    assert studio.window.titles == [title for title, _ in default_pages(studio)]
    assert studio.window.titles[0] == "Study setup"  # other screens follow it
    view = studio.window.view("Study setup")
    assert isinstance(view, SetupView)
    shown = view.settings()
    assert shown.stimuli.startswith("synthetic") and shown.driver == "mouse"
    assert shown.resolved_study_path().parent == data_dir()
    studio.window.close()  # closing saves the settings
    assert load_settings().participant == shown.participant


def test_damaged_settings_fall_back_to_the_defaults_with_a_notice(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{ not json")
    studio = StudioApp(settings_file=path)
    qtbot.addWidget(studio.window)
    assert studio.settings == StudySettings() and "damaged" in studio.notice
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("settings.json.damaged-")]
    assert len(kept) == 1 and kept[0].name in studio.notice
    studio.window.close()  # closing saves the settings shown (the defaults) ...
    assert kept[0].read_text() == "{ not json"  # ... and the user's damaged file is still there
    assert load_settings(path).participant == StudySettings().participant  # a fresh, readable file


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"[1, 2]", b'"text"'])
def test_a_settings_file_that_holds_no_settings_is_kept_aside(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"settings\.json is damaged .*kept as .*settings\.json\.damaged-"):
        load_settings(path)
    assert not path.exists()
    (kept,) = tmp_path.iterdir()
    assert kept.read_bytes() == content


def test_a_failed_settings_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.json"
    save_settings(StudySettings(participant="P09", seed=5), path)
    before = path.read_bytes()
    real_write = Path.write_bytes

    def full_disk(self: Path, data: bytes) -> int:
        real_write(self, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: full_disk(self, b"{ partial"))
    with pytest.raises(OSError, match="No space left"):
        save_settings(StudySettings(participant="P10"), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_settings_files_keep_what_they_can(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_settings(StudySettings(participant="P09", seed=5), path)
    data = json.loads(path.read_text())
    data.update({"seed": "five", "labels": ["happy", "neutral", "bored"], "unknown": 1, "distance_cm": 55})
    path.write_text(json.dumps(data))
    loaded = load_settings(path)
    assert loaded.participant == "P09" and loaded.seed == 0 and loaded.distance_cm == 55.0
    assert loaded.labels == StudySettings().labels  # a list with an unknown label is not used


def test_driver_options_come_from_the_driver_signatures() -> None:
    assert [o.name for o in driver_options("mouse")] == ["rate_hz", "noise_std_px"]
    eyetribe = {o.name: o for o in driver_options("eyetribe")}
    assert eyetribe["gaze"].kind == "choice" and eyetribe["gaze"].choices == ("avg", "raw")
    assert eyetribe["port"].kind == "int" and eyetribe["data_timeout_ms"].optional
    assert eyetribe["connect_timeout_s"].label == "connect timeout (s)"
    replay = {o.name: o for o in driver_options("replay")}
    assert replay["source"].required and replay["source"].kind == "path"
    assert parse_option(eyetribe["data_timeout_ms"], "") is None
    assert parse_option(eyetribe["port"], "6556") == 6556
    with pytest.raises(ValueError, match="needs a number"):
        parse_option(eyetribe["port"], "x")
    with pytest.raises(ValueError, match="is needed"):
        parse_option(replay["source"], " ")
    for name in DRIVERS:
        driver_options(name)


def test_build_driver_lends_the_position_source() -> None:
    driver = build_driver(
        "mouse", {"rate_hz": 90.0, "bogus": 1}, geometry=ScreenGeometry(), position_source=lambda: (1.0, 2.0)
    )
    assert isinstance(driver, MouseSimulator) and driver.nominal_rate_hz == 90.0
    with pytest.raises(ValueError, match="replay tracker needs source"):
        build_driver("replay", {}, geometry=ScreenGeometry())


def test_tasks_run_off_the_gui_thread_and_report_back_on_it(qtbot: QtBot) -> None:
    seen: dict[str, object] = {}
    main = threading.current_thread()

    def work(progress, cancelled):  # type: ignore[no-untyped-def]
        seen["worker"] = threading.current_thread() is not main
        progress(0.5, "half")
        return 42

    def done(value: object) -> None:
        seen["result"] = value
        seen["on_main"] = threading.current_thread() is main

    task = run_task(work, on_result=done, on_progress=lambda f, t: seen.setdefault("progress", (f, t)))
    qtbot.waitUntil(lambda: task.done, timeout=5000)
    assert seen == {"worker": True, "progress": (0.5, "half"), "result": 42, "on_main": True}

    errors: list[BaseException] = []
    failing = run_task(lambda p, c: 1 / 0, on_result=done, on_error=errors.append)
    qtbot.waitUntil(lambda: failing.done, timeout=5000)
    assert isinstance(errors[0], ZeroDivisionError)

    gate = threading.Event()
    results: list[object] = []

    def slow(progress, cancelled):  # type: ignore[no-untyped-def]
        gate.wait(5)
        return "late" if not cancelled() else "cancelled"

    cancelled_task = run_task(slow, on_result=results.append)
    cancelled_task.cancel()
    gate.set()
    qtbot.wait(200)
    assert cancelled_task.done and results == []


def test_the_first_window_loads_no_heavy_module() -> None:
    """Old code: the default pages imported pyqtgraph and scikit-learn before the first window."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from rbdm_gui.screens.app import StudioApp\n"
        "StudioApp().window.show(); app.processEvents()\n"
        "print(sorted(m for m in ('tensorflow', 'pyqtgraph', 'sklearn', 'matplotlib') if m in sys.modules))\n"
    )
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_compare_and_experiments_follow_the_study_chosen_in_setup(qtbot: QtBot, tmp_path: Path) -> None:
    """Old code: Compare kept the study it had until the app was restarted."""
    from rbdm_gui.screens.comparison_view import ComparisonView
    from rbdm_gui.screens.experiment_view import ExperimentView

    studio = StudioApp()
    qtbot.addWidget(studio.window)
    compare = studio.window.show_page("Compare")
    experiments = studio.window.show_page("Experiments")
    assert isinstance(compare, ComparisonView) and isinstance(experiments, ExperimentView)
    setup = studio.setup_view
    assert setup is not None
    other = tmp_path / "other-study.sqlite"
    setup.study_edit.setText(str(other))
    qtbot.waitUntil(lambda: compare.study_edit.text() == str(other), timeout=3000)
    assert experiments.form.study_edit.text() == str(other)
    assert "No study file" in compare.status_label.text()


@pytest.mark.parametrize("size", [(1280, 800), (2560, 1440)])
def test_every_screen_fits_the_window_at_1280_by_800_and_at_a_large_size(
    qtbot: QtBot, size: tuple[int, int]
) -> None:
    """Rendered offscreen: no screen forces the window larger; Start is on screen without scrolling."""
    from PySide6.QtCore import QRect

    studio = StudioApp()
    qtbot.addWidget(studio.window)
    window = studio.window
    window.resize(*size)
    window.show()
    for title in window.titles:
        view = window.show_page(title)
        qtbot.wait(20)
        hint = window.minimumSizeHint()
        assert hint.width() <= 1280 and hint.height() <= 800, (title, hint)
        assert (window.width(), window.height()) == size, title
        assert view.width() >= 0.7 * size[0] - 200, title  # the screen takes the room it is given
    setup = window.show_page("Study setup")
    assert isinstance(setup, SetupView)
    start = QRect(
        setup.start_button.mapTo(window, setup.start_button.rect().topLeft()), setup.start_button.size()
    )
    assert window.rect().contains(start), (start, window.rect())
