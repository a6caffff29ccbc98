"""The labeling screen's model without Qt: its key rules and the texts it shows (RBDM §5.3.1)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from rbdm_gui.workflows.session_screen import KEYS, LabelingScreenModel
from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState
from tracking.protocol import LabelingProtocol, Listeners, Phase, ProtocolTiming
from tracking.recording import LabelingSession, SpokenLabel
from tracking.speech.base import Recognition

FAST = ProtocolTiming(blank_ms=50.0, cross_ms=50.0, second_blank_ms=50.0)


class Frames:
    """Presents frames to a protocol on a made-up clock, 60 per second."""

    def __init__(self, protocol: LabelingProtocol) -> None:
        self.protocol = protocol
        self.t_ms = 0.0

    def until(self, phase: Phase) -> None:
        for _ in range(1000):
            self.t_ms += 1000.0 / 60.0
            self.protocol.begin_frame(self.t_ms)
            self.protocol.frame_presented(self.t_ms)
            if self.protocol.phase is phase:
                return
        raise AssertionError(f"never reached {phase}")


def model_for(n: int = 3, **options: str) -> tuple[LabelingScreenModel, Frames, Listeners[str]]:
    protocol = LabelingProtocol([f"s{k}" for k in range(n)], timing=FAST, clock=lambda: 0.0)
    failed: Listeners[str] = Listeners()
    session = cast(LabelingSession, SimpleNamespace(protocol=protocol, failed=failed))
    return LabelingScreenModel(session, **options), Frames(protocol), failed


def event(kind: DriverEventKind, state: DriverState, message: str) -> DriverEvent:
    return DriverEvent(kind, message, 0.0, state, "eyetribe")


def test_keys_label_the_image_go_on_and_pause() -> None:
    model, frames, _ = model_for()
    protocol = model.protocol
    model.start()
    frames.until(Phase.BLANK)
    assert model.press("2") and model.warning
    assert model.status() == "Labels are taken while the image is shown."
    frames.until(Phase.STIMULUS)
    assert model.press("next") and protocol.position == 0  # no label yet: the screen says so
    assert model.status().startswith("Say a label, or press 1–8")
    assert model.press("3") and model.choice.label == protocol.labels[2] and not model.warning
    assert model.status() == f"{protocol.labels[2]} (key)"  # the label clears the notice
    assert model.press("enter") and protocol.position == 1
    assert not model.press("x") and KEYS >= {"next", "enter", "escape", "1"}


def test_paused_only_enter_resumes_and_every_key_is_taken() -> None:
    model, frames, _ = model_for()
    protocol = model.protocol
    resumed: list[None] = []
    model.resumed.subscribe(resumed.append)
    model.start()
    frames.until(Phase.STIMULUS)
    assert model.press("escape")
    frames.until(Phase.PAUSED)
    assert model.press("3") and model.press("next") and model.press("x")
    assert protocol.phase is Phase.PAUSED and protocol.choice.label is None and resumed == []
    assert model.press("enter") and resumed == [None] and protocol.position == 0
    frames.until(Phase.BLANK)


def test_a_hold_pauses_before_the_first_trial_and_the_pause_text_says_why() -> None:
    model, frames, _ = model_for(speech_notice="No audio input device: keys 1–8 only.")
    model.start(hold="The tracker reports no calibration.")
    frames.until(Phase.PAUSED)
    text = model.pause_text()
    assert text.startswith("0 of 3 stimuli are labelled and saved. Resume continues with stimulus 1.")
    assert "no calibration" in text and "keys 1–8 only" in text
    assert model.legend()[-1] == "(speech off: keys only)" and len(model.legend()) == 9
    model.resume()
    assert model.problem == "" and "no calibration" not in model.pause_text()


def test_tracker_speech_and_store_news_become_notices_and_problems() -> None:
    model, frames, failed = model_for()
    model.start()
    frames.until(Phase.STIMULUS)
    model.driver_event(event(DriverEventKind.DEVICE_NOTICE, DriverState.STREAMING, "calibration lost"))
    assert model.notice == "tracker: calibration lost"
    model.driver_event(event(DriverEventKind.CONNECTION_LOST, DriverState.LOST, "no data for 2 s"))
    assert model.notice == "tracker lost" and model.problem == "Tracker: no data for 2 s"
    model.speech_problem("the recogniser stopped")
    assert model.status() == "speech: the recogniser stopped"
    model.spoken(SpokenLabel(0, Recognition("sad", "sad", 0.8, 0.0, 1.0)))
    assert model.choice.label == "sad" and model.status() == "sad (spoken)"
    model.spoken(SpokenLabel(1, Recognition("happy", "happy", 0.8, 0.0, 1.0)))  # another image's word
    assert model.choice.label == "sad"
    failed.emit("The store could not save trial 1. Free disk space, then resume.")
    frames.until(Phase.PAUSED)
    assert "Free disk space" in model.pause_text()
    model.resume()
    frames.until(Phase.BLANK)
    assert model.notice == ""  # a new trial starts without the old notice
