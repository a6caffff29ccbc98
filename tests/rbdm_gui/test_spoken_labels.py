"""Spoken labels in the real labeling screen, offscreen: recorded speech through the microphone's path.

The audio source stands where the microphone stands (``SessionRun(open_audio=...)``): a thread hands
30-ms blocks of espeak-ng speech to the same ``on_block`` callback PortAudio would call, at twice
real-time pace, only while a word is to be said; silence blocks (the room's noise floor) otherwise.
The recogniser is the real PocketSphinx one chosen in the settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from analysis.labels import LABELS
from rbdm_gui.screens.app import SessionRun
from rbdm_gui.screens.labeling_view import LabelingView
from rbdm_gui.screens.setup_view import SetupView
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.settings import StudySettings
from tests.rbdm_gui._sessions import SCREEN, settings_for
from tests.tracking.speech._espeak import NOISE_STD, needs_espeak, spoken, write_wav
from tracking.drivers import MouseSimulator
from tracking.protocol import Phase, ProtocolTiming
from tracking.speech.audio import wav_blocks
from tracking.speech.base import match_label
from tracking.store import SessionStore

pytestmark = pytest.mark.gui

FAST = ProtocolTiming(blank_ms=100.0, cross_ms=50.0, second_blank_ms=100.0)
BLOCK_S = speech.BLOCK_MS / 1000.0


class RecordedSpeech:
    """An audio source: noise-floor blocks, and a word's blocks whenever :meth:`say` is called."""

    def __init__(self, words: dict[str, list[NDArray[np.int16]]], *, speed: float = 2.0) -> None:
        self._words = words
        self._speed = speed
        self._pending: list[NDArray[np.int16]] = []
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.opened: list[str] = []
        self._rng = np.random.default_rng(0)

    def say(self, word: str) -> None:
        with self._lock:
            self._pending += self._words[word]

    def open(self, device: str, on_block: Callable[[NDArray[np.int16]], None]) -> RecordedSpeech:
        """``open_audio`` for :class:`SessionRun`: start handing blocks to ``on_block`` on a thread."""
        self.opened.append(device)
        self._running.set()
        self._thread = threading.Thread(target=self._run, args=(on_block,), name="recorded-speech")
        self._thread.start()
        return self

    def close(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join()

    def _run(self, on_block: Callable[[NDArray[np.int16]], None]) -> None:
        n = round(speech.SAMPLE_RATE_HZ * BLOCK_S)
        while self._running.is_set():
            with self._lock:
                block = self._pending.pop(0) if self._pending else None
            if block is None:
                block = np.rint(self._rng.normal(0.0, NOISE_STD, n)).astype(np.int16)
            on_block(block)
            time.sleep(BLOCK_S / self._speed)


@pytest.fixture(scope="module")
def words(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[NDArray[np.int16]]]:
    folder = tmp_path_factory.mktemp("spoken")
    return {
        word: list(wav_blocks(write_wav(folder / f"{word}_16k.wav", spoken(word, folder), rate_hz=16000)))
        for word in ("happy", "sad", "banana")
    }


def spoken_settings(tmp_path: Path, **changes: object) -> StudySettings:
    """Three faces labelled by voice through the bundled recogniser."""
    return settings_for(tmp_path, n=3, **{"recogniser": "pocketsphinx", **changes})


def start_run(qtbot: QtBot, settings: StudySettings, **options: object) -> SessionRun:
    run = SessionRun(
        settings,
        make_driver=lambda s, g: MouseSimulator(lambda: (SCREEN / 2, SCREEN / 2), rate_hz=60.0),
        timing=FAST,
        show_report=False,
        **options,  # type: ignore[arg-type]
    )
    failures: list[str] = []
    run.failed.connect(failures.append)
    run.start()
    qtbot.waitUntil(
        lambda: bool(failures) or (run.labeling_view is not None and run.labeling_view.isVisible()),
        timeout=20_000,
    )
    assert not failures, failures
    return run


def image_shown(view: LabelingView) -> Callable[[], bool]:
    return lambda: view.protocol.phase is Phase.STIMULUS


@needs_espeak
def test_spoken_labels_reach_the_store(
    qtbot: QtBot, tmp_path: Path, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    speech = RecordedSpeech(words)
    run = start_run(qtbot, spoken_settings(tmp_path, microphone="USB mic"), open_audio=speech.open)
    view = run.labeling_view
    assert view is not None and run.gate is not None and speech.opened == ["USB mic"]
    protocol = view.protocol

    for word in ("happy", "sad"):
        qtbot.waitUntil(image_shown(view), timeout=5000)
        speech.say(word)
        qtbot.waitUntil(lambda: protocol.choice.label is not None, timeout=8000)
        assert protocol.choice.source == "speech"
        qtbot.keyClick(view, Qt.Key.Key_Space)

    qtbot.waitUntil(image_shown(view), timeout=5000)
    speech.say("banana")
    qtbot.waitUntil(lambda: protocol.choice.unrecognised, timeout=8000)
    assert protocol.choice.label is None and "unrecognised" in protocol.choice.describe()
    qtbot.keyClick(view, Qt.Key.Key_Space)  # refused: no label yet
    assert protocol.phase is Phase.STIMULUS
    qtbot.keyClick(view, Qt.Key.Key_7)  # anger, by key
    qtbot.keyClick(view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: run.outcome is not None, timeout=10_000)

    with SessionStore(tmp_path / "study.sqlite") as store:
        (session,) = store.sessions()
        trials = store.trials(session.session_id)
    assert [(t.label, t.label_source) for t in trials] == [
        ("happy", "speech"),
        ("sad", "speech"),
        ("anger", "keyboard"),
    ]
    assert [t.recognised_text for t in trials[:2]] == ["happy", "sad"]
    assert trials[2].recognised_text and match_label(trials[2].recognised_text) is None  # what was heard
    assert all(t.confidence is not None and 0.5 <= t.confidence <= 1 for t in trials[:2])
    assert not any(
        t.name in ("speech-gate", "recorded-speech") and t.is_alive() for t in threading.enumerate()
    )


def test_without_a_microphone_the_session_runs_by_keys(qtbot: QtBot, tmp_path: Path) -> None:
    def no_microphone(device: str, on_block: Callable[[NDArray[np.int16]], None]) -> speech.AudioSource:
        return speech.open_microphone("no such input device", on_block)  # this machine: none at all

    notices: list[str] = []
    run = SessionRun(
        spoken_settings(tmp_path, max_stimuli=1, labels=LABELS[:6]),
        make_driver=lambda s, g: MouseSimulator(lambda: (SCREEN / 2, SCREEN / 2), rate_hz=60.0),
        timing=FAST,
        show_report=False,
        open_audio=no_microphone,
    )
    run.notice.connect(notices.append)
    run.start()
    qtbot.waitUntil(lambda: run.labeling_view is not None and run.labeling_view.isVisible(), timeout=20_000)
    view = run.labeling_view
    assert view is not None and run.gate is None
    assert notices and "keys 1–6" in notices[0]  # the label set has 6 labels (old code: "keys 1–8")
    qtbot.waitUntil(image_shown(view), timeout=5000)
    assert "keys 1–6" in view.speech_notice
    qtbot.keyClick(view, Qt.Key.Key_2)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: run.outcome is not None, timeout=10_000)
    with SessionStore(tmp_path / "study.sqlite") as store:
        (session,) = store.sessions()
        (trial,) = store.trials(session.session_id)
    assert (trial.label, trial.label_source) == ("happy", "keyboard")
    assert session.recogniser == "keyboard"  # what was used, not the pocketsphinx that was asked for


def test_the_setup_screen_says_when_there_is_no_microphone(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser="pocketsphinx", labels=LABELS[:6]))
    qtbot.addWidget(view)
    names, _ = speech.microphone_names()
    if names:
        pytest.skip("this machine has a microphone")
    view.show()
    assert view.recogniser_combo.currentData() == "pocketsphinx"
    assert "No audio input device" in view.speech_notice.text()
    assert "keys 1–6" in view.speech_notice.text()  # follows the label set
    assert "Keys 1–6 label" in view.hint_label.text()
    assert not view.microphone_combo.isEnabled()
    assert view.microphone_combo.currentText() == "none found"
