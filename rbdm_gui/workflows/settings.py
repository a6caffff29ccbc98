"""Study settings of the desktop app: what the setup screen shows, persisted as JSON (no Qt here).

Settings live in ``$XDG_CONFIG_HOME/rbdm-studio/settings.json`` (``~/.config/...`` by default);
``RBDM_STUDIO_CONFIG_DIR`` points elsewhere (tests use it). Studies (SQLite files) default to
``$XDG_DATA_HOME/rbdm-studio/`` (``RBDM_STUDIO_DATA_DIR`` overrides it).

The tracker options on the setup screen are read from each driver's signature in
:data:`tracking.drivers.DRIVERS`, so a new driver shows its options without GUI code; the GUI lends
what only it can give (the mouse simulator's ``position_source``, the screen size).
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from analysis.files import atomic_write_text, keep_damaged
from analysis.geometry import ScreenGeometry
from analysis.labels import LABELS, label_index
from tracking.drivers import DRIVERS
from tracking.drivers.base import GazeDriver
from tracking.fixations import DEFAULT_DETECTOR, DETECTORS
from tracking.protocol import DEFAULT_ORDER_DESIGN, ORDER_DESIGNS
from tracking.records import check_pseudonym

__all__ = [
    "CONFIG_DIR_ENV",
    "DATA_DIR_ENV",
    "DEFAULT_STIMULI",
    "KEYBOARD_ONLY",
    "LENT_PARAMETERS",
    "DriverOption",
    "StudySettings",
    "build_driver",
    "config_dir",
    "data_dir",
    "detector_description",
    "driver_options",
    "load_settings",
    "parse_option",
    "save_settings",
    "settings_path",
]

CONFIG_DIR_ENV = "RBDM_STUDIO_CONFIG_DIR"
DATA_DIR_ENV = "RBDM_STUDIO_DATA_DIR"
#: The embedded default stimuli: 2 synthetic faces per label from the test split, drawn at 512 px.
DEFAULT_STIMULI = "synthetic:n=2,size=512"
#: The recogniser choice meaning: no microphone, labels by the number keys only.
KEYBOARD_ONLY = "keyboard"
#: Driver parameters the GUI provides itself; they never appear on the setup screen.
LENT_PARAMETERS = frozenset(
    {"position_source", "button_source", "rng", "reconnect", "channels", "screen_size_px"}
)


def _home_dir(env: str, xdg: str, fallback: str) -> Path:
    explicit = os.environ.get(env)
    if explicit:
        return Path(explicit)
    base = os.environ.get(xdg)
    return (Path(base) if base else Path.home() / fallback) / "rbdm-studio"


def config_dir() -> Path:
    """Folder of the settings file (``$RBDM_STUDIO_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/rbdm-studio``)."""
    return _home_dir(CONFIG_DIR_ENV, "XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    """Default folder of study files (``$RBDM_STUDIO_DATA_DIR``, else ``$XDG_DATA_HOME/rbdm-studio``)."""
    return _home_dir(DATA_DIR_ENV, "XDG_DATA_HOME", ".local/share")


def settings_path() -> Path:
    """The settings file."""
    return config_dir() / "settings.json"


@dataclass(frozen=True, slots=True)
class StudySettings:
    """Everything the setup screen asks before a labeling session (RBDM §5.3.1).

    Parameters
    ----------
    study_path : str
        The study's SQLite file; empty for ``study.sqlite`` in :func:`data_dir`.
    participant : str
        Pseudonym of the annotator (letters, digits, ``_``, ``-``; never a name).
    stimuli : str
        ``"synthetic:..."`` or a dataset folder (see :func:`analysis.datasets.open_dataset`).
    split : str
        Split of the dataset to label; empty for its last split.
    max_stimuli : int
        At most this many stimuli, a seeded random choice; 0 for all.
    labels : tuple of str
        The label set, in :data:`analysis.labels.LABELS` order; keys 1–n choose them.
    driver : str
        A key of :data:`tracking.drivers.DRIVERS`.
    driver_options : mapping
        Per driver name, its options by parameter name.
    detector : str
        A key of :data:`tracking.fixations.DETECTORS`.
    recogniser : str
        A speech recogniser's name, or ``"keyboard"``.
    vosk_model_dir : str
        Folder of a Vosk model (for the ``vosk`` recogniser).
    microphone : str
        Input device name; empty for the system default.
    screen_width_px, screen_height_px : int
        Resolution of the labeling screen.
    diagonal_in : float
        Its visible diagonal.
    distance_cm : float
        Eye-to-screen distance (70 cm in RBDM §5.3.1).
    seed : int
        The study's seed: of the stimulus choice, and of the orders (with the design).
    order_design : str
        How each participant's order is made: a key of :data:`tracking.protocol.ORDER_DESIGNS`
        (``per-participant`` random orders by default).
    calibrate : bool
        Run the 9-point calibration/validation before the first trial.
    """

    study_path: str = ""
    participant: str = "P01"
    stimuli: str = DEFAULT_STIMULI
    split: str = ""
    max_stimuli: int = 0
    labels: tuple[str, ...] = LABELS
    driver: str = "mouse"
    driver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    detector: str = DEFAULT_DETECTOR
    recogniser: str = "pocketsphinx"
    vosk_model_dir: str = ""
    microphone: str = ""
    screen_width_px: int = 2560
    screen_height_px: int = 1440
    diagonal_in: float = 27.0
    distance_cm: float = 70.0
    seed: int = 0
    order_design: str = DEFAULT_ORDER_DESIGN
    calibrate: bool = True

    def geometry(self) -> ScreenGeometry:
        """The screen as a :class:`~analysis.geometry.ScreenGeometry` (raises for impossible values)."""
        return ScreenGeometry(self.screen_width_px, self.screen_height_px, self.diagonal_in, self.distance_cm)

    def resolved_study_path(self) -> Path:
        """The study file: :attr:`study_path`, or ``study.sqlite`` in :func:`data_dir`."""
        return Path(self.study_path).expanduser() if self.study_path else data_dir() / "study.sqlite"

    def stimulus_set_key(self) -> str:
        """Identifies the stimulus set: sessions on the same key can be resumed."""
        return f"{self.stimuli}|split={self.split}|max={self.max_stimuli}|seed={self.seed}"

    def check(self) -> None:
        """Raise ``ValueError`` with a message for the first setting that cannot work."""
        check_pseudonym(self.participant)
        self.geometry()
        if self.driver not in DRIVERS:
            raise ValueError(f"unknown tracker {self.driver!r}; choose one of {', '.join(DRIVERS)}.")
        if self.detector not in DETECTORS:
            raise ValueError(
                f"unknown fixation detector {self.detector!r}; choose one of {', '.join(DETECTORS)}."
            )
        if self.order_design not in ORDER_DESIGNS:
            raise ValueError(
                f"unknown order design {self.order_design!r}; choose one of {', '.join(ORDER_DESIGNS)}."
            )
        if not self.labels:
            raise ValueError("choose at least one label.")
        if not self.stimuli.strip():
            raise ValueError("choose the stimuli: 'synthetic' or a dataset folder.")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["driver_options"] = {k: dict(v) for k, v in self.driver_options.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StudySettings:
        """Settings from :meth:`to_json`'s dict; unknown keys are ignored, bad values keep the default."""
        default = cls()
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in data:
                value = _coerce(item.name, data[item.name], getattr(default, item.name))
                if value is not None:
                    values[item.name] = value
        return replace(default, **values)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``, or None when it does not fit."""
    if name == "labels":
        if isinstance(value, list) and all(isinstance(v, str) and v in LABELS for v in value):
            return tuple(sorted(dict.fromkeys(value), key=label_index))
        return None
    if name == "driver_options":
        ok = isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
        return {str(k): dict(v) for k, v in value.items()} if ok else None
    if isinstance(default, bool):
        return value if isinstance(value, bool) else None
    if isinstance(default, int):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else None
    return value if isinstance(value, str) else None


def load_settings(path: Path | None = None) -> StudySettings:
    """Read the settings file; the defaults when it does not exist.

    A damaged file (not UTF-8 JSON, or no settings object) is renamed aside to
    ``settings.json.damaged-<UTC time>`` (:func:`analysis.files.keep_damaged`), so that saving the
    defaults later never overwrites what the user had.

    Raises
    ------
    ValueError
        When the file is damaged; the message names it and the copy it was kept as (the app then uses
        the defaults).
    """
    target = settings_path() if path is None else Path(path)
    try:
        text = target.read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        return StudySettings()
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(_damaged(target, str(err))) from err
    if not isinstance(data, dict):
        raise ValueError(_damaged(target, f"it holds a JSON {type(data).__name__}, not settings"))
    return StudySettings.from_json(data)


def _damaged(target: Path, problem: str) -> str:
    """Keep a damaged settings file aside; the notice that says so."""
    try:
        kept = f"it was kept as {keep_damaged(target)}"
    except OSError as err:
        kept = f"it could not be renamed aside ({err.strerror}); copy it before saving the settings"
    return f"the settings file {target} is damaged ({problem}); {kept}, and the defaults are used instead."


def save_settings(settings: StudySettings, path: Path | None = None) -> Path:
    """Write the settings atomically (a temporary file renamed over the old one); return the path."""
    target = settings_path() if path is None else Path(path)
    return atomic_write_text(target, json.dumps(settings.to_json(), indent=2, sort_keys=True))


# --- driver options -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriverOption:
    """One option of a driver, read from its signature.

    Parameters
    ----------
    name : str
        The keyword argument.
    kind : {"float", "int", "bool", "str", "path", "choice"}
        How it is edited and parsed.
    default : Any
        Its default; None also for a required option (see ``required``).
    optional : bool
        None is a valid value (an empty field).
    required : bool
        The driver cannot be built without it.
    choices : tuple of str
        The values of a ``choice``.
    """

    name: str
    kind: str
    default: Any
    optional: bool
    required: bool
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A readable name: ``connect_timeout_s`` → ``connect timeout (s)``."""
        match = re.fullmatch(r"(.*)_(ms|s|hz|px|deg|cm)", self.name)
        if match:
            unit = {"hz": "Hz"}.get(match.group(2), match.group(2))
            return f"{match.group(1).replace('_', ' ')} ({unit})"
        return self.name.replace("_", " ")


def driver_options(driver: str) -> list[DriverOption]:
    """The options of ``DRIVERS[driver]`` the user sets (the lent ones are left out)."""
    if driver not in DRIVERS:
        raise ValueError(f"unknown tracker {driver!r}; choose one of {', '.join(DRIVERS)}.")
    options = []
    for parameter in inspect.signature(DRIVERS[driver]).parameters.values():
        if parameter.name in LENT_PARAMETERS or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        options.append(_option(parameter))
    return options


def _option(parameter: inspect.Parameter) -> DriverOption:
    annotation = str(parameter.annotation)
    required = parameter.default is inspect.Parameter.empty
    default = None if required else parameter.default
    optional = "None" in annotation
    literal = re.search(r"Literal\[(.*?)\]", annotation)
    if literal:
        choices = tuple(str(v) for v in ast.literal_eval(f"({literal.group(1)},)"))
        return DriverOption(parameter.name, "choice", default, optional, required, choices)
    if "PathLike" in annotation:
        kind = "path"
    else:
        first = annotation.split("|")[0].strip()
        kind = first if first in ("float", "int", "bool") else "str"
    return DriverOption(parameter.name, kind, default, optional, required)


def parse_option(option: DriverOption, text: str) -> Any:
    """The value of ``option`` typed as ``text``; empty text is the default (None where optional).

    Raises
    ------
    ValueError
        For text that is not a number where one is needed, or a missing required value.
    """
    stripped = text.strip()
    if not stripped:
        if option.required:
            raise ValueError(f"the tracker option {option.label!r} is needed; fill it in.")
        return None if option.optional else option.default
    if option.kind == "bool":
        return stripped.lower() in ("1", "true", "yes", "on")
    if option.kind in ("float", "int"):
        try:
            return float(stripped) if option.kind == "float" else int(stripped)
        except ValueError as err:
            raise ValueError(
                f"the tracker option {option.label!r} needs a number; got {stripped!r}."
            ) from err
    if option.kind == "choice" and stripped not in option.choices:
        raise ValueError(
            f"the tracker option {option.label!r} must be one of {option.choices!r}; got {stripped!r}."
        )
    return stripped


_UNIT_SUFFIXES = (("_deg_s", "°/s"), ("_deg", "°"), ("_ms", "ms"), ("_hz", "Hz"), ("_px", "px"))


def _parameter_text(name: str, value: Any) -> str:
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            words = name.removesuffix(suffix).replace("_", " ")
            return f"{words} {value:,g} {unit}" if isinstance(value, (int, float)) else f"{words} {value}"
    return f"{name.replace('_', ' ')} {value}"


def detector_description(detector: str) -> str:
    """One line about a fixation detector: what it is and its parameters in degrees and ms.

    Read from ``DETECTORS[detector]``'s docstring and signature, so a new detector describes itself.

    Raises
    ------
    ValueError
        For an unknown detector.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown fixation detector {detector!r}; choose one of {', '.join(DETECTORS)}.")
    factory = DETECTORS[detector]
    summary = (inspect.getdoc(factory) or detector).splitlines()[0].rstrip(".")
    parameters = [
        _parameter_text(p.name, p.default)
        for p in inspect.signature(factory).parameters.values()
        if p.default is not inspect.Parameter.empty
        and isinstance(p.default, (int, float, str))
        and not isinstance(p.default, bool)
    ]
    return f"{summary}. Parameters: " + ", ".join(parameters) + "."


def build_driver(
    driver: str,
    options: Mapping[str, Any],
    *,
    geometry: ScreenGeometry,
    position_source: Callable[[], tuple[float, float] | None] | None = None,
    button_source: Callable[[], bool] | None = None,
) -> GazeDriver:
    """Create ``DRIVERS[driver]`` with the user's options and what the GUI lends.

    Parameters
    ----------
    driver : str
        A key of :data:`tracking.drivers.DRIVERS`.
    options : mapping
        Option values by name, as :func:`parse_option` gives them; unknown names are ignored.
    geometry : ScreenGeometry
        Lent as ``screen_size_px`` to drivers that need the screen size.
    position_source, button_source : callable, optional
        Lent to the mouse simulator (the cursor in screen pixels, the button state).

    Raises
    ------
    ValueError
        For a missing required option (the message names it).
    """
    known = {o.name: o for o in driver_options(driver)}
    kwargs = {name: value for name, value in options.items() if name in known and value is not None}
    missing = [o.label for o in known.values() if o.required and o.name not in kwargs]
    if missing:
        raise ValueError(f"the {driver} tracker needs {', '.join(missing)}; fill it in on the setup screen.")
    lent: dict[str, Any] = {
        "position_source": position_source,
        "button_source": button_source,
        "screen_size_px": (geometry.width_px, geometry.height_px),
    }
    parameters = inspect.signature(DRIVERS[driver]).parameters
    kwargs.update({name: value for name, value in lent.items() if name in parameters and value is not None})
    return DRIVERS[driver](**kwargs)
