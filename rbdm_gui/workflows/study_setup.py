"""The study setup screen's model: the next labeling session's settings and what Start does (no Qt).

:class:`StudySetup` holds a :class:`~rbdm_gui.workflows.settings.StudySettings` and the policy around
it: which values the screen accepts (the ranges in :data:`INT_LIMITS` and :data:`FLOAT_LIMITS`, the
registries' names), the stimulus set as edited (:class:`StimulusChoice`), tracker options typed as text,
the study's participants and what Start does for the participant in the form (resume an unfinished
session or begin a new one, with a warning when the new order repeats a stored one), and the start
request itself (checked, saved, then announced). The panels of
:class:`~rbdm_gui.screens.setup_view.SetupView` show it and write the user's edits back; the model
emits plain callbacks (:class:`~tracking.protocol.Listeners`), as
:class:`~tracking.study.StudyComparison` does for the Compare screen.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (one labeling session per
   participant, stimuli in a random order, viewing distance 70 cm).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analysis.geometry import ScreenGeometry
from analysis.labels import LABELS
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.session import SessionOutcome, session_outcome
from rbdm_gui.workflows.settings import (
    KEYBOARD_ONLY,
    DriverOption,
    StudySettings,
    build_driver,
    detector_description,
    driver_options,
    parse_option,
    save_settings,
)
from tracking.drivers import DRIVERS
from tracking.errors import StoreError
from tracking.fixations import DETECTORS
from tracking.protocol import ORDER_DESIGNS, Listeners
from tracking.recording import ParticipantState, SessionPlan, participant_states, plan_session
from tracking.records import check_pseudonym
from tracking.store import SessionStore

__all__ = [
    "FLOAT_DECIMALS",
    "FLOAT_LIMITS",
    "INT_LIMITS",
    "ORDER_DESIGN_TEXT",
    "PSEUDONYM_HINT",
    "PSEUDONYM_MAX_CHARS",
    "SYNTHETIC_LIMITS",
    "SYNTHETIC_SPLITS",
    "StartRequest",
    "StimulusChoice",
    "StudyParticipants",
    "StudySetup",
    "TrackerNote",
    "TrackerOptions",
    "TrackerProbe",
    "pseudonym_problem",
    "read_splits",
]

#: The splits of the embedded synthetic faces.
SYNTHETIC_SPLITS = ("train", "validation", "test")
#: The longest pseudonym (:data:`tracking.records.PSEUDONYM_PATTERN`).
PSEUDONYM_MAX_CHARS = 32
PSEUDONYM_HINT = "A pseudonym such as P07: 1–32 letters, digits, '_' or '-' (no spaces); never a name."
#: What each order design of :data:`tracking.protocol.ORDER_DESIGNS` means, in a few words.
ORDER_DESIGN_TEXT = {
    "per-participant": "random, one per participant",
    "latin-square": "balanced Latin square",
    "same-for-all": "one random order for all",
}
#: Lowest and highest value of each integer setting the screen edits (a :class:`StudySettings` field).
INT_LIMITS: dict[str, tuple[int, int]] = {
    "max_stimuli": (0, 100_000),
    "seed": (0, 2**31 - 1),
    "screen_width_px": (1, 20_000),
    "screen_height_px": (1, 20_000),
}
#: Lowest and highest value of each decimal setting; shown and kept to :data:`FLOAT_DECIMALS` decimals.
FLOAT_LIMITS: dict[str, tuple[float, float]] = {"diagonal_in": (1.0, 300.0), "distance_cm": (10.0, 500.0)}
FLOAT_DECIMALS = 1
#: Lowest and highest value of the synthetic faces' options (a :class:`StimulusChoice` field).
SYNTHETIC_LIMITS: dict[str, tuple[int, int]] = {"n_per_label": (1, 500), "size_px": (16, 1200)}
#: The settings Start depends on: a change means the participants and the plan are read again.
_START_FIELDS = (
    "study_path",
    "participant",
    "stimuli",
    "split",
    "max_stimuli",
    "seed",
    "order_design",
    "labels",
)
_SYNTHETIC = re.compile(r"synthetic(:.*)?", re.DOTALL)


def _clamp_int(value: int, limits: tuple[int, int]) -> int:
    return min(max(int(value), limits[0]), limits[1])


@dataclass(frozen=True, slots=True)
class StimulusChoice:
    """The stimulus set as the screen edits it: the embedded synthetic faces, or a dataset folder.

    Both alternatives keep their values while the other is chosen, so switching back restores them.

    Parameters
    ----------
    synthetic : bool
        The embedded synthetic faces (else the dataset ``folder``).
    n_per_label : int
        Synthetic faces per label (the ``n`` of ``"synthetic:n=2,size=512"``).
    size_px : int
        Side of the drawn synthetic faces in image pixels.
    folder : str
        A dataset folder (see :func:`analysis.datasets.open_dataset`).
    """

    synthetic: bool = True
    n_per_label: int = 2
    size_px: int = 512
    folder: str = ""

    def __post_init__(self) -> None:
        for name, limits in SYNTHETIC_LIMITS.items():
            value = getattr(self, name)
            if not limits[0] <= value <= limits[1]:
                raise ValueError(f"{name} must be in {limits[0]}–{limits[1]}; got {value!r}.")

    @property
    def spec(self) -> str:
        """The :attr:`StudySettings.stimuli` spec: ``"synthetic:n=…,size=…"`` or the folder."""
        return f"synthetic:n={self.n_per_label},size={self.size_px}" if self.synthetic else self.folder

    def with_spec(self, spec: str) -> StimulusChoice:
        """This choice after reading ``spec``: unknown synthetic options are ignored, values clamped."""
        if not _SYNTHETIC.fullmatch(spec):
            return replace(self, synthetic=False, folder=spec.strip())
        values = {"n": 2, "size": 512}
        for item in filter(None, (part.strip() for part in spec.partition(":")[2].split(","))):
            key, _, value = item.partition("=")
            if key.strip() in values and value.strip().isdigit():
                values[key.strip()] = int(value)
        return replace(
            self,
            synthetic=True,
            n_per_label=_clamp_int(values["n"], SYNTHETIC_LIMITS["n_per_label"]),
            size_px=_clamp_int(values["size"], SYNTHETIC_LIMITS["size_px"]),
        )


@dataclass(frozen=True, slots=True)
class StartRequest:
    """The user asked for a session: checked, saved settings; ``new_session`` even when one is unfinished."""

    settings: StudySettings
    new_session: bool = False


@dataclass(frozen=True, slots=True)
class TrackerNote:
    """What the screen says about the chosen tracker; ``tone`` is ``"info"``, ``"ok"`` or ``"problem"``."""

    text: str = ""
    tone: str = "info"


@dataclass(frozen=True, slots=True)
class TrackerProbe:
    """A connection test of one tracker: connect, read its sampling rate and calibration, disconnect."""

    driver: str
    options: Mapping[str, Any]
    geometry: ScreenGeometry

    def run(self) -> str:
        """Connect (blocking: run it on a worker thread); the report, or the driver's error raised."""
        driver = build_driver(self.driver, self.options, geometry=self.geometry, position_source=lambda: None)
        try:
            driver.connect()
            return _tracker_report(self.driver, driver)
        finally:
            driver.close()


def _tracker_report(name: str, driver: Any) -> str:
    """What a connected tracker reports: its sampling rate, and whether it is calibrated."""
    text = f"{name}: connected, {driver.nominal_rate_hz:g} Hz reported."
    calibrated = getattr(driver, "calibrated", None)
    if calibrated is False:
        text += " Not calibrated: calibrate it with the tracker's software before the first trial."
    elif calibrated is True:
        text += " Calibrated."
    return text


def pseudonym_problem(text: str) -> str:
    """What is wrong with a pseudonym as typed (surrounding spaces ignored); "" when it is fine."""
    try:
        check_pseudonym(text.strip())
    except ValueError as err:
        return str(err)
    return ""


def read_splits(folder: str) -> tuple[str, ...]:
    """The splits of the dataset in ``folder`` (reads the folder: run it on a worker thread)."""
    from analysis.datasets import open_dataset

    return tuple(open_dataset(folder).splits)


def _option_value(option: DriverOption, value: Any, previous: Any) -> Any:
    """``value`` as the screen's editor for ``option`` keeps it; raises ``ValueError`` for bad text."""
    if option.kind == "bool":
        return bool(value)
    if option.kind == "choice":
        return str(value) if str(value) in option.choices else previous
    return parse_option(option, "" if value is None else str(value))


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """Every tracker's options as the screen edits them (:func:`~rbdm_gui.workflows.settings.driver_options`).

    Parameters
    ----------
    values : mapping
        Per driver name, the options that can be read, by name (``StudySettings.driver_options``).
    unread : mapping
        Per driver name, the options that cannot be read: why (the message names the option), and the
        text as typed. They are left out of ``values``.
    """

    values: Mapping[str, Mapping[str, Any]]
    unread: Mapping[str, Mapping[str, tuple[str, str]]]

    @classmethod
    def defaults(cls) -> TrackerOptions:
        """Every driver's options at their defaults (a required option cannot be read yet)."""
        options = cls({driver: {} for driver in DRIVERS}, {driver: {} for driver in DRIVERS})
        for driver in DRIVERS:
            for option in driver_options(driver):
                first = option.choices[0] if option.choices else None
                options = options._written(driver, option, option.default, first)
        return options

    def merged(self, given: Mapping[str, Mapping[str, Any]]) -> TrackerOptions:
        """These options with ``given`` written over them (unknown drivers and names are ignored)."""
        options = self
        for driver, values in given.items():
            known = {o.name: o for o in driver_options(driver)} if driver in DRIVERS else {}
            for name, value in values.items():
                if name in known:
                    options = options._written(driver, known[name], value, options.values[driver].get(name))
        return options

    def written(self, driver: str, name: str, value: Any) -> TrackerOptions:
        """These options after an edit: text for numbers, paths and text; a bool or a choice as is."""
        option = next(o for o in driver_options(driver) if o.name == name)
        return self._written(driver, option, value, self.values[driver].get(name))

    def _written(self, driver: str, option: DriverOption, value: Any, previous: Any) -> TrackerOptions:
        values, unread = dict(self.values[driver]), dict(self.unread[driver])
        try:
            values[option.name] = _option_value(option, value, previous)
            unread.pop(option.name, None)
        except ValueError as err:
            values.pop(option.name, None)
            unread[option.name] = (str(err), "" if value is None else str(value))
        return TrackerOptions({**self.values, driver: values}, {**self.unread, driver: unread})

    def check(self, driver: str) -> None:
        """Raise ``ValueError`` (naming the option) when an option of ``driver`` cannot be read."""
        problems = self.unread.get(driver, {})
        if problems:
            raise ValueError(next(iter(problems.values()))[0])


@dataclass(frozen=True, slots=True)
class StudyParticipants:
    """The study's participants on a stimulus set, and what Start does for the one in the form.

    Parameters
    ----------
    pseudonym : str
        The participant in the form ("" when none is typed).
    states : tuple of ParticipantState
        Every participant of the study and their state on the stimulus set, in the order they joined.
    plan : SessionPlan, optional
        What Start does for ``pseudonym``: resume a session, or begin one (None when the study cannot
        be read).
    problem : str
        Why the study cannot be read; "" when it can (or does not exist yet).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (one session per participant).
    """

    pseudonym: str = ""
    states: tuple[ParticipantState, ...] = ()
    plan: SessionPlan | None = None
    problem: str = ""

    @classmethod
    def read(cls, settings: StudySettings) -> StudyParticipants:
        """Read the study file of ``settings`` (read-only; a missing file has no participants)."""
        path, pseudonym = settings.resolved_study_path(), settings.participant
        new = SessionPlan(pseudonym, None, 0, (), settings.order_design)
        if not path.is_file():
            return cls(pseudonym, (), new)
        key = settings.stimulus_set_key()
        try:
            with SessionStore.open_read_only(path) as store:
                states = tuple(participant_states(store, stimulus_set=key))
                if pseudonym:
                    design, seed = settings.order_design, settings.seed
                    new = plan_session(store, pseudonym, stimulus_set=key, design=design, seed=seed)
        except (StoreError, ValueError) as err:
            return cls(pseudonym, problem=str(err))
        return cls(pseudonym, states, new)

    @property
    def resumes(self) -> bool:
        """Whether Start resumes an unfinished session (then "New session" begins another)."""
        return self.plan is not None and not self.plan.new

    def state_of(self, pseudonym: str) -> ParticipantState | None:
        """The state of ``pseudonym`` (None when not in the study)."""
        return next((s for s in self.states if s.pseudonym == pseudonym), None)

    def pseudonym_of(self, session_id: int) -> str:
        """The participant of a listed session ("?" when it is not listed)."""
        return next((s.pseudonym for s in self.states if s.session_id == session_id), "?")

    def plan_text(self) -> str:
        """What Start does for the participant, or why the study cannot be read."""
        if self.problem:
            return self.problem
        if not self.pseudonym or self.plan is None:
            return "Type a pseudonym, or click a participant above."
        return self.plan.text

    def warning(self) -> str:
        """Why the new session's order may confound comparisons; "" when it repeats no stored order."""
        return "" if self.plan is None else self.plan.warning


class StudySetup:
    """The study setup screen without widgets: settings, participants, what Start does (RBDM §5.3.1).

    Parameters
    ----------
    settings : StudySettings
        Shown at first (through :meth:`set_settings`, so values the screen cannot show are replaced).
    settings_file : Path, optional
        Where :meth:`save` writes (the user's config folder by default).
    microphones : tuple of (sequence of str, str), optional
        The input devices and why there are none (as :func:`rbdm_gui.workflows.speech.microphone_names`
        gives them, which is asked by default).

    Notes
    -----
    ``changed`` (:class:`~tracking.protocol.Listeners` of str) is emitted with the aspect that changed:
    ``"settings"`` (any setting), ``"start"`` (a setting Start depends on: read the participants again
    with :meth:`read_participants`), ``"participants"`` (:attr:`participants`, a
    :class:`StudyParticipants`, was read), ``"splits"``, ``"problem"`` and ``"tracker"``.
    ``start_requested`` carries a :class:`StartRequest`; ``study_path_changed`` the resolved study file
    whenever :meth:`read_participants` finds another one. Call everything on one thread.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """

    def __init__(
        self,
        settings: StudySettings,
        *,
        settings_file: Path | None = None,
        microphones: tuple[Sequence[str], str] | None = None,
    ) -> None:
        names, problem = speech.microphone_names() if microphones is None else microphones
        self.microphones: tuple[str, ...] = tuple(names)
        self.microphone_problem = problem
        self.recognisers: tuple[str, ...] = (*speech.recogniser_names(), KEYBOARD_ONLY)
        self.settings_file = settings_file
        self.changed: Listeners[str] = Listeners()
        self.start_requested: Listeners[StartRequest] = Listeners()
        self.study_path_changed: Listeners[str] = Listeners()
        self.splits: tuple[str, ...] = ("",)
        self.participants = StudyParticipants()
        self.problem = ""
        self.tracker_note = TrackerNote()
        self._start_problem = False
        self._study_path = ""
        self._stimuli = StimulusChoice()
        self._options = TrackerOptions.defaults()
        self._settings = StudySettings(  # the first of each choice, as a new combo box shows it
            driver=next(iter(DRIVERS)), driver_options=self._options.values, detector=next(iter(DETECTORS))
        )
        self.set_settings(settings)

    # --- settings -----------------------------------------------------------------------------------

    @property
    def settings(self) -> StudySettings:
        """The settings as shown; options of any tracker that cannot be read are left out."""
        return self._settings

    @property
    def stimuli(self) -> StimulusChoice:
        """The stimulus set as edited (its :attr:`~StimulusChoice.spec` is ``settings.stimuli``)."""
        return self._stimuli

    def entered_settings(self) -> StudySettings:
        """The settings as shown, when each option of the chosen tracker can be read.

        Raises
        ------
        ValueError
            For an option of the chosen tracker that cannot be read (the message names it).
        """
        self._options.check(self._settings.driver)
        return self._settings

    def set_settings(self, settings: StudySettings) -> None:
        """Show ``settings``: names the screen does not offer keep the current choice, numbers are clamped."""
        self._stimuli = self._stimuli.with_spec(settings.stimuli)
        self._options = self._options.merged(settings.driver_options)
        self._start_problem_off()
        self._note_tracker(TrackerNote())
        if self._stimuli.synthetic:
            self.set_splits(SYNTHETIC_SPLITS)
        self._store(replace(self._normalised(settings), driver_options=self._options.values))

    def update(self, **changes: Any) -> None:
        """Change settings by field name (as :func:`dataclasses.replace`); values normalised as shown.

        ``stimuli`` is read into :attr:`stimuli`; ``driver_options`` are written over the current ones
        (as :meth:`set_driver_option` writes one).
        """
        if "driver_options" in changes:
            self._options = self._options.merged(changes.pop("driver_options"))
            changes["driver_options"] = self._options.values
        if "stimuli" in changes:
            self._stimuli = self._stimuli.with_spec(str(changes["stimuli"]))
        if "driver" in changes and changes["driver"] != self._settings.driver:
            self._start_problem_off()
            self._note_tracker(TrackerNote())
        self._store(self._normalised(replace(self._settings, **changes)))

    def set_stimuli(self, **changes: Any) -> None:
        """Change the stimulus choice by field name; a switch to the synthetic faces offers their splits."""
        before = self._stimuli
        limits = SYNTHETIC_LIMITS
        clamped: dict[str, Any] = {
            k: _clamp_int(v, limits[k]) if k in limits else v for k, v in changes.items()
        }
        if "folder" in clamped:
            clamped["folder"] = str(clamped["folder"]).strip()
        self._stimuli = replace(before, **clamped)
        if self._stimuli.synthetic and not before.synthetic:
            self.set_splits(SYNTHETIC_SPLITS)
        self._store(replace(self._settings, stimuli=self._stimuli.spec))

    def set_label(self, label: str, chosen: bool) -> None:
        """Add ``label`` to the label set, or take it out; the set keeps the order of ``LABELS``."""
        labels = set(self._settings.labels) | {label} if chosen else set(self._settings.labels) - {label}
        self.update(labels=tuple(labels))

    def set_driver_option(self, driver: str, name: str, value: Any) -> None:
        """An edit of one tracker option: text for numbers, paths and text; a bool or a choice as is."""
        self._options = self._options.written(driver, name, value)
        self._store(replace(self._settings, driver_options=self._options.values))

    def option_problem(self, driver: str, name: str) -> tuple[str, str]:
        """Why the value of a tracker option cannot be read, and the text as typed; ("", "") when it can.

        The option is then left out of ``settings.driver_options``.
        """
        return self._options.unread.get(driver, {}).get(name, ("", ""))

    def _normalised(self, settings: StudySettings) -> StudySettings:
        now = self._settings
        values: dict[str, Any] = {
            "study_path": settings.study_path.strip(),
            "participant": settings.participant[:PSEUDONYM_MAX_CHARS].strip(),
            "stimuli": self._stimuli.spec,
            "split": settings.split.strip(),
            "labels": tuple(label for label in LABELS if label in settings.labels),
            "driver": settings.driver if settings.driver in DRIVERS else now.driver,
            "detector": settings.detector if settings.detector in DETECTORS else now.detector,
            "recogniser": settings.recogniser if settings.recogniser in self.recognisers else KEYBOARD_ONLY,
            "vosk_model_dir": settings.vosk_model_dir.strip(),
            "microphone": settings.microphone if settings.microphone in self.microphones else "",
            "order_design": (
                settings.order_design if settings.order_design in ORDER_DESIGNS else next(iter(ORDER_DESIGNS))
            ),
        }
        for name, limits in INT_LIMITS.items():
            values[name] = _clamp_int(getattr(settings, name), limits)
        for name, (low, high) in FLOAT_LIMITS.items():
            values[name] = round(min(max(float(getattr(settings, name)), low), high), FLOAT_DECIMALS)
        return replace(settings, **values)

    def _store(self, settings: StudySettings) -> None:
        before, self._settings = self._settings, settings
        self.changed.emit("settings")
        if any(getattr(before, name) != getattr(settings, name) for name in _START_FIELDS):
            self.changed.emit("start")

    def save(self) -> Path | None:
        """Save the settings as shown; the file, or None when they cannot be read (then :attr:`problem`)."""
        try:
            settings = self.entered_settings()
        except ValueError as err:
            self.set_problem(str(err))
            return None
        return save_settings(settings, self.settings_file)

    # --- what the screen says ------------------------------------------------------------------------

    @property
    def n_labels(self) -> int:
        """Labels in the label set (keys 1–n choose them)."""
        return len(self._settings.labels)

    @property
    def speaks(self) -> bool:
        """Whether labels can be spoken: a recogniser is chosen and there is a microphone."""
        return self._settings.recogniser != KEYBOARD_ONLY and not self.microphone_problem

    def speech_notice(self, meter_problem: str = "") -> str:
        """What the screen says about spoken labels: keys only, or what is missing (keys 1–n still label).

        ``meter_problem`` is why the level meter could not open the microphone, when it could not.
        """
        n_labels = self.n_labels
        if self._settings.recogniser == KEYBOARD_ONLY:
            return f"Labels by keys 1–{n_labels} only; nothing is recorded from the microphone."
        return speech.keys_text(self.microphone_problem or meter_problem, n_labels)

    def geometry_text(self) -> str:
        """The drawn image's width, its scale to the 1200 px of RBDM §5.3.1 and 1° of visual angle in px."""
        try:
            geometry = self._settings.geometry()
        except ValueError as err:
            return str(err)
        size_px = 1200.0
        rect = geometry.stimulus_rect(size_px)
        return (
            f"image {rect.width_px:.0f} px (scale {rect.width_px / size_px:.2f}); "
            f"1° = {geometry.visual_span_px(1.0):.1f} px"
        )

    def detector_text(self) -> str:
        """The chosen fixation detector and its parameters in degrees and ms."""
        return detector_description(self._settings.detector)

    def set_splits(self, splits: Sequence[str]) -> None:
        """The splits the stimulus set offers ("" first: the dataset's last split)."""
        self.splits = ("", *splits)
        self.changed.emit("splits")

    def set_problem(self, text: str) -> None:
        """Say why something cannot work ("" to clear it)."""
        self.problem = text
        self._start_problem = False
        self.changed.emit("problem")

    def show_problem(self, text: str) -> None:
        """Say why a session could not start (until the next start, or another tracker is chosen)."""
        self.set_problem(text)
        self._start_problem = True

    def _start_problem_off(self) -> None:
        if self._start_problem:  # why the last start failed: it was about the tracker then chosen
            self.set_problem("")

    # --- participants and Start ----------------------------------------------------------------------

    def read_participants(self) -> None:
        """Read the study's participants and the plan for Start into :attr:`participants`."""
        self.participants = StudyParticipants.read(self._settings)
        self.changed.emit("participants")
        path = str(self._settings.resolved_study_path())
        if path != self._study_path:
            self._study_path = path
            self.study_path_changed.emit(path)

    def session_report(self, session_id: int) -> SessionOutcome:
        """The report of a listed session of the study (phase timing, gaze per trial).

        Raises
        ------
        StoreError, ValueError
            When the study or the session cannot be read.
        """
        participant = self.participants.pseudonym_of(session_id)
        with SessionStore.open_read_only(self._settings.resolved_study_path()) as store:
            return session_outcome(store, session_id, participant=participant)

    def start_hint(self) -> str:
        """The keys of the session, and what Start does with finished and unfinished sessions."""
        n_keys = self.n_labels
        if not n_keys:
            return "Choose at least one label."
        state = self.participants.state_of(self._settings.participant)
        after = (
            "An unfinished session is resumed where it stopped; finished sessions are never changed."
            if state is None or state.state != "finished"
            else f"{self._settings.participant} has finished a session; Start begins a new one."
        )
        return f"Full screen. Keys 1–{n_keys} label, Space goes on, Esc pauses. {after}"

    def request_start(self, *, new_session: bool = False) -> None:
        """Check and save the settings, then announce a :class:`StartRequest`; else say what is wrong."""
        try:
            settings = self.entered_settings()
            settings.check()
        except ValueError as err:
            self.set_problem(str(err))
            return
        self.set_problem("")
        save_settings(settings, self.settings_file)
        self.start_requested.emit(StartRequest(settings, new_session))

    # --- tracker test --------------------------------------------------------------------------------

    def tracker_probe(self) -> TrackerProbe:
        """Say "Connecting to …" and hand out the test of the chosen tracker (run it on a worker thread).

        Raises
        ------
        ValueError
            When the tracker options or the screen cannot be read (the reason is also noted).
        """
        try:
            settings = self.entered_settings()
            geometry = settings.geometry()
        except ValueError as err:
            self._note_tracker(TrackerNote(str(err), self.tracker_note.tone))
            raise
        name = settings.driver
        self._note_tracker(TrackerNote(f"Connecting to {name}…"))
        return TrackerProbe(name, dict(settings.driver_options.get(name, {})), geometry)

    def tracker_tested(self, driver: str, text: str, *, problem: bool = False) -> None:
        """The outcome of a :class:`TrackerProbe`; dropped when another tracker was chosen since."""
        if driver == self._settings.driver:
            self._note_tracker(TrackerNote(text, "problem" if problem else "ok"))

    def _note_tracker(self, note: TrackerNote) -> None:
        self.tracker_note = note
        self.changed.emit("tracker")
