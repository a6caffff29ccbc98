"""The labeling screen's model, without Qt: what it says besides the image and what its keys do.

:class:`~rbdm_gui.screens.labeling_view.LabelingView` paints the phase its protocol asks for and the
texts of :class:`LabelingScreenModel`: the keys' legend, the label given, short notices at the bottom
edge ("Labels are taken while the image is shown", "tracker lost") and the pause text (how many
stimuli are saved, why the session is held). Keys arrive here by name (:data:`KEYS`), so the rules
(Esc pauses, 1–n label, Space/Enter/→ go on, only Enter resumes while paused) are tested without a
window.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the labeling screen).
"""

from __future__ import annotations

from tracking.drivers.base import DriverEvent
from tracking.protocol import LabelChoice, Listeners, Phase, PhaseOnset
from tracking.recording import LabelingSession, SpokenLabel, give_spoken_label

__all__ = ["KEYS", "LabelingScreenModel"]

#: The keys the labeling screen knows, by name: digits label, "next" and "enter" go on, "escape" pauses.
KEYS = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "9", "next", "enter", "escape"})
#: Between the label and a notice on one line; a line break where the text stands beside the image.
STATUS_SEPARATOR = "   ·   "


class LabelingScreenModel:
    """The labeling screen's texts and key rules over one :class:`~tracking.recording.LabelingSession`.

    Parameters
    ----------
    session : LabelingSession
        The recorded session; its protocol must not have started yet.
    speech_notice : str, optional
        Why speech is unavailable ("keyboard only: ..."); shown while paused, "speech off" in the legend.

    Attributes
    ----------
    choice : LabelChoice
        The label state of the image on screen.
    notice : str
        A short notice for the bottom edge (cleared by a label and by the next trial).
    problem : str
        Why the session is held (a failed commit, a lost tracker, an uncalibrated one); shown while
        paused, cleared by :meth:`resume`.
    resumed : Listeners of None
        Called after :meth:`resume`: the view hides its pause overlay.
    """

    def __init__(self, session: LabelingSession, *, speech_notice: str = "") -> None:
        self.session = session
        self.protocol = session.protocol
        self.choice = LabelChoice()
        self.notice = ""
        self.problem = ""
        self.speech_notice = speech_notice
        self.resumed: Listeners[None] = Listeners()
        self.protocol.phase_started.subscribe(self._on_phase)
        self.protocol.label_changed.subscribe(self._on_label)
        self.protocol.notice.subscribe(self._on_notice)
        session.failed.subscribe(self._on_failure)

    # --- driving -------------------------------------------------------------------------------------

    def start(self, *, hold: str = "") -> None:
        """Start the protocol; with ``hold`` (an uncalibrated tracker, say) paused, showing the text."""
        self.protocol.start()
        if hold:
            self.problem = hold
            self.protocol.pause()

    def pause(self) -> None:
        """Pause (Esc): the trial on screen is shown again from its start after :meth:`resume`."""
        self.protocol.pause()

    def resume(self) -> None:
        """Continue with the next stimulus without a trial; the held problem is cleared."""
        self.problem = ""
        self.protocol.resume()
        self.resumed.emit(None)

    def press(self, key: str) -> bool:
        """Act on ``key`` (a name in :data:`KEYS`); returns whether the screen took it.

        While paused only "enter" acts (it resumes), and every key is taken.
        """
        if self.protocol.phase is Phase.PAUSED:
            if key == "enter":
                self.resume()
            return True
        if key == "escape":
            self.pause()
        elif key.isdigit():
            self.protocol.key_label(int(key))
        elif key in ("next", "enter"):
            self.protocol.advance()
        else:
            return False
        return True

    def spoken(self, spoken: SpokenLabel) -> None:
        """A recognition from the speech gate (dropped when its image has gone)."""
        give_spoken_label(self.protocol, spoken)

    def speech_problem(self, message: str) -> None:
        """The recogniser failed on an utterance: say so at the bottom edge."""
        self.notice = f"speech: {message}"

    def driver_event(self, event: DriverEvent) -> None:
        """The tracker's news: a device notice at the bottom edge; a lost tracker held as the problem."""
        kind, state = event.kind.value, event.state.value
        if kind == "device_notice":  # e.g. the tracker lost its calibration
            self.notice = f"tracker: {event.message}"
        elif state in ("lost", "disconnected"):
            self.problem = f"Tracker: {event.message}"
            if self.protocol.phase is Phase.STIMULUS:
                self.notice = "tracker lost"

    # --- texts ---------------------------------------------------------------------------------------

    def legend(self) -> list[str]:
        """The keys' legend, one entry per label ("1  happy"), and "speech off" when keys are all there is."""
        labels = [f"{k}  {label}" for k, label in enumerate(self.protocol.labels, start=1)]
        if self.speech_notice:
            labels.append("(speech off: keys only)")
        return labels

    def status(self) -> str:
        """The label given and the notice, on one line ("" when there is nothing to say)."""
        status = self.choice.describe()
        if self.notice:
            status = f"{status}{STATUS_SEPARATOR}{self.notice}" if status else self.notice
        return status

    @property
    def warning(self) -> bool:
        """Whether the status is a notice still waiting for a label (drawn in the notice colour)."""
        return bool(self.notice) and self.choice.label is None

    def pause_text(self) -> str:
        """What the pause overlay says: how far the session is, and why it is held."""
        done, total = self.protocol.position, len(self.protocol.stimulus_ids)
        lines = [
            f"{done} of {total} stimuli are labelled and saved. Resume continues with stimulus {done + 1}."
        ]
        lines += [text for text in (self.problem, self.speech_notice) if text]
        return "\n\n".join(lines)

    # --- protocol news -------------------------------------------------------------------------------

    def _on_phase(self, onset: PhaseOnset) -> None:
        if onset.phase is Phase.BLANK and onset.stimulus_id is not None:
            self.notice = ""

    def _on_label(self, choice: LabelChoice) -> None:
        self.choice = choice
        if choice.label is not None:
            self.notice = ""

    def _on_notice(self, text: str) -> None:
        self.notice = text

    def _on_failure(self, message: str) -> None:
        self.problem = message
        self.protocol.pause()
