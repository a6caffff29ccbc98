"""Spoken labels without Qt: espeak-ng audio → SpeechGate (worker thread) → PocketSphinx → protocol.

The audio takes the microphone's path: 30-ms blocks (``wav_blocks``) handed to ``gate.feed`` from
another thread, as PortAudio's callback would; recognitions come back on the gate's worker thread
and are applied on the test's thread, as the GUI's queued signal does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.tracking.speech._espeak import needs_espeak, spoken, write_wav
from tracking.protocol import FinishedTrial, LabelingProtocol, Phase
from tracking.recording import SpeechGate, SpokenLabel, give_spoken_label
from tracking.speech.audio import wav_blocks
from tracking.speech.sphinx import PocketsphinxRecogniser

pytestmark = needs_espeak

FRAME_MS = 1000.0 / 60.0


@pytest.fixture(scope="module")
def recogniser() -> PocketsphinxRecogniser:
    return PocketsphinxRecogniser()


@pytest.fixture(scope="module")
def words(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[NDArray[np.int16]]]:
    """Each word as the 30-ms blocks a microphone would deliver (espeak-ng, 16 kHz, noise floor)."""
    folder = tmp_path_factory.mktemp("spoken")
    return {
        word: list(wav_blocks(write_wav(folder / f"{word}_16k.wav", spoken(word, folder), rate_hz=16000)))
        for word in ("happy", "banana", "sad")
    }


class Session:
    """A protocol with the gate attached; recognitions cross threads as they do in the app."""

    def __init__(self, recogniser: PocketsphinxRecogniser, n_stimuli: int = 2) -> None:
        self.protocol = LabelingProtocol([f"s{k}" for k in range(n_stimuli)], clock=lambda: self.t_ms)
        self.inbox: queue.Queue[SpokenLabel] = queue.Queue()
        self.threads: set[str] = set()
        self.errors: list[str] = []
        self.finished: list[FinishedTrial] = []
        self.gate = SpeechGate(recogniser, self._deliver, on_error=self.errors.append)
        self.gate.attach(self.protocol)
        self.protocol.trial_finished.subscribe(self.finished.append)
        self.t_ms = 0.0

    def _deliver(self, spoken_label: SpokenLabel) -> None:
        self.threads.add(threading.current_thread().name)
        self.inbox.put(spoken_label)

    def frame(self) -> Phase:
        phase = self.protocol.begin_frame(self.t_ms)
        self.protocol.frame_presented(self.t_ms)
        self.t_ms += FRAME_MS
        return phase

    def until_stimulus(self, audio: list[NDArray[np.int16]] | None = None) -> None:
        """Run frames until the image is on screen, feeding ``audio`` meanwhile (one block per frame)."""
        blocks = iter(audio or [])
        while self.frame() is not Phase.STIMULUS:
            block = next(blocks, None)
            if block is not None:
                self.gate.feed(block)
        for block in blocks:  # the rest of a too-long recording also comes before the onset
            self.gate.feed(block)

    def say(self, blocks: list[NDArray[np.int16]]) -> list[SpokenLabel]:
        """Feed ``blocks`` from a microphone-like thread, wait for the worker, apply what it heard."""
        feeder = threading.Thread(target=lambda: [self.gate.feed(b) for b in blocks], name="portaudio")
        feeder.start()
        feeder.join()
        assert self.gate.drain(timeout_s=10.0)
        heard = []
        while not self.inbox.empty():
            heard.append(self.inbox.get())
            give_spoken_label(self.protocol, heard[-1])
        return heard

    def close(self) -> None:
        self.gate.stop()


@pytest.fixture
def session(recogniser: PocketsphinxRecogniser) -> Iterator[Session]:
    run = Session(recogniser)
    run.protocol.start()
    yield run
    run.close()
    assert run.errors == []


def test_a_spoken_label_becomes_the_trials_label(
    session: Session, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    session.until_stimulus()
    (heard,) = session.say(words["happy"])
    assert heard.recognition.label == "happy" and heard.position == 0
    assert session.threads == {"speech-gate"}  # decoded on the gate's worker, not the audio thread
    choice = session.protocol.choice
    assert (choice.label, choice.source, choice.heard_text) == ("happy", "speech", "happy")
    assert session.protocol.advance()
    session.frame()
    (finished,) = session.finished
    trial = finished.trial
    assert (trial.label, trial.label_source, trial.recognised_text) == ("happy", "speech", "happy")
    assert trial.confidence is not None and 0.5 <= trial.confidence <= 1
    assert trial.confidence == pytest.approx(heard.recognition.confidence)
    # the word's time counts from the stimulus onset (t0_ms; the audio here comes faster than real time)
    assert heard.recognition.start_ms >= trial.phases.stimulus_onset_ms + 250.0  # after the 500-ms lead-in


def test_another_word_is_shown_as_unrecognised_and_the_key_still_labels(
    session: Session, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    session.until_stimulus()
    (heard,) = session.say(words["banana"])
    assert heard.recognition.label is None
    choice = session.protocol.choice
    assert choice.label is None and choice.unrecognised
    assert "unrecognised" in choice.describe()
    assert not session.protocol.advance()  # no label yet: the key press does not go on
    assert session.protocol.key_label(3)
    assert session.protocol.advance()
    session.frame()
    (finished,) = session.finished
    assert (finished.trial.label, finished.trial.label_source) == ("sad", "keyboard")


def test_audio_before_the_stimulus_onset_is_ignored(
    session: Session, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    assert not session.gate.listening
    session.until_stimulus(words["happy"])  # spoken during the blank screens and the cross
    assert session.gate.listening
    assert session.gate.drain(timeout_s=10.0)
    assert session.inbox.empty() and session.protocol.choice.label is None
    assert len(session.say(words["sad"])) == 1  # while the image is shown: heard
    assert session.protocol.choice.label == "sad"


def test_a_recognition_that_arrives_after_its_image_is_dropped(
    session: Session, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    session.until_stimulus()
    session.protocol.key_label(1)
    late = SpokenLabel(session.protocol.position, session.say(words["happy"])[0].recognition)
    assert session.protocol.advance()
    session.until_stimulus()  # the next image: the late result must not label it
    assert not give_spoken_label(session.protocol, late)
    assert session.protocol.choice.label is None


def test_audio_after_the_key_press_is_ignored_and_stop_ends_the_worker(
    recogniser: PocketsphinxRecogniser, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    run = Session(recogniser, n_stimuli=1)
    run.protocol.start()
    run.until_stimulus()
    run.protocol.key_label(2)
    run.protocol.advance()
    run.frame()  # FINISHED on screen: the listening period ended
    assert run.protocol.phase is Phase.FINISHED and not run.gate.listening
    assert run.say(words["happy"]) == []
    run.close()
    run.close()  # idempotent
    assert not any(t.name == "speech-gate" and t.is_alive() for t in threading.enumerate())


def test_the_gate_needs_a_recogniser() -> None:
    with pytest.raises(TypeError, match="start_utterance"):
        SpeechGate(object(), print)  # type: ignore[arg-type]


def test_a_failing_recogniser_is_reported_and_the_gate_keeps_running(
    session: Session, words: dict[str, list[NDArray[np.int16]]]
) -> None:
    session.until_stimulus()
    session.gate.feed(np.zeros(16000, dtype=np.int16))  # 1 s: longer than a block may be
    assert session.gate.drain(timeout_s=10.0)
    assert len(session.errors) == 1 and "at most" in session.errors[0]
    session.errors.clear()
    assert len(session.say(words["happy"])) == 1
    assert session.protocol.choice.label == "happy"
