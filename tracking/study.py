"""A recorded labeling study, read back and compared with a Trainer's saliency (RBDM §5.3.2, Table 1).

:func:`read_study` collects, per stimulus, each annotator's fixations from a study file (the
:class:`~tracking.store.SessionStore` that labeling sessions write): several participants' sessions on
one stimulus set, each trial's fixations in screen pixels together with where its session drew the
image. :func:`load_stimulus_images` decodes the stimuli again from the session's stimulus-set spec,
and :func:`trainer_info` / :func:`model_relevance` bring in a Trainer model and its relevance maps
(cached on disk). :class:`StudyComparison` is the Qt-free model of the comparison view and of
``rbdm compare``: it turns all this into heatmaps and metric tables with :mod:`analysis.perception`
and :mod:`analysis.study`, and tells its listeners when the annotator choice or the relevance changes.

The comparison frame
--------------------
Heatmaps are compared on one pixel grid per stimulus. With a model it is the model's input (say
48 × 48 px): the relevance map lives there and "the same heatmapping algorithm" is applied to it
(RBDM §5.3.2), so the fixations are mapped from the screen straight into that grid with
:func:`analysis.geometry.screen_to_image` (the screen stretches the image into its square, the model
input is the image stretched the same way) and the visual span is scaled to it. Without a model the
frame is the stimulus image itself. Fixations outside the drawn image are dropped.

What the labeling sessions store (``Session.settings``)
-------------------------------------------------------
``stimulus_set``: the key of the stimulus set (sessions on one key saw the same images);
``stimuli``: the dataset spec for :func:`analysis.datasets.open_dataset`; ``split``: its split;
``stimulus_rect``: ``{"x_px", "y_px", "width_px", "height_px"}``, where the image was drawn on the
screen. Stimulus ids are the dataset's sample ids (``synthetic/test/3``, a relative file path...).

Trials marked bad
-----------------
A trial the experimenter marked bad in the live monitor (:meth:`~tracking.store.SessionStore.flag_trial`)
stays in the study file, but the readers here leave it out by default, as if it had never been
recorded: :func:`read_study` lists it in :attr:`Study.flagged_left_out`, and
:func:`read_image_fixations` drops it. ``include_flagged=True`` reads it like any other trial.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (two annotators, images drawn
   1200 × 1200 px), §5.3.2 (heatmaps, n most relevant pixels, Table 1, Figure 7).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.datasets import SyntheticLoader, open_dataset
from analysis.datasets.base import DatasetLoader, IndexedLoader
from analysis.geometry import VISUAL_SPAN_DEG, ScreenGeometry, StimulusRect, screen_to_image
from analysis.heatmap import top_n_points
from analysis.labels import LABELS
from analysis.masked_dataset import ImageFixations
from analysis.metrics import ComparisonTable, compare
from analysis.perception import (
    VisualSpan,
    compare_stimulus,
    mean_fixation_count,
    stimulus_heatmaps,
    visual_span_in_image,
)
from analysis.progress import ProgressCallback
from analysis.study import model_input_image, study_table
from tracking.errors import StoreError
from tracking.protocol import Listeners
from tracking.recording import Cancelled
from tracking.records import (
    SETTING_SPLIT,
    SETTING_STIMULI,
    SETTING_STIMULUS_RECT,
    SETTING_STIMULUS_SET,
    SETTING_STIMULUS_SIZE_PX,
    Session,
)
from tracking.store import SessionStore

__all__ = [
    "FlaggedTrial",
    "ModelRelevance",
    "StimulusComparison",
    "Study",
    "StudyComparison",
    "StudyTables",
    "TrainerInfo",
    "Viewing",
    "default_cache_dir",
    "load_stimulus_images",
    "model_relevance",
    "read_image_fixations",
    "read_study",
    "session_stimulus_rect",
    "trainer_info",
]

Points = NDArray[np.float64]


# --- the study file -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Viewing:
    """One annotator's trial on one stimulus: the fixations and where the image was drawn.

    Parameters
    ----------
    annotator : str
        The participant's pseudonym.
    session_id, position : int
        The trial in the store.
    stimulus_id : str
        The stimulus shown.
    label : str
        The annotator's label.
    fixations_screen_px : ndarray of float64, shape (N, 2)
        Fixation centres ``(x, y)`` on the screen, in time order (also those off the image).
    durations_ms : ndarray of float64, shape (N,)
        Their durations.
    geometry : ScreenGeometry
        The session's screen.
    stimulus_rect : StimulusRect
        Where the session drew the image, in screen pixels.
    """

    annotator: str
    session_id: int
    position: int
    stimulus_id: str
    label: str
    fixations_screen_px: Points
    durations_ms: NDArray[np.float64]
    geometry: ScreenGeometry
    stimulus_rect: StimulusRect

    def fixations_image_px(self, image_shape: tuple[int, int]) -> Points:
        """The fixations on the image, in the pixels of an ``(H, W)`` grid stretched over it.

        References
        ----------
        .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (image drawn in a square).
        """
        return screen_to_image(self.fixations_screen_px, self.stimulus_rect, image_shape)

    def on_image(self, image_shape: tuple[int, int], *, angle_deg: float = VISUAL_SPAN_DEG) -> ImageFixations:
        """The fixations on an ``(H, W)`` image with the session's visual span scaled to it (gaze masks).

        References
        ----------
        .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 (visual span) and §6 (masking
           with human fixations).
        """
        span = visual_span_in_image(self.geometry, self.stimulus_rect, image_shape, angle_deg=angle_deg)
        return ImageFixations(self.fixations_image_px(image_shape), span)


@dataclass(frozen=True, slots=True)
class FlaggedTrial:
    """A trial marked bad (:meth:`~tracking.store.SessionStore.flag_trial`) and left out of a study.

    Parameters
    ----------
    annotator : str
        The participant's pseudonym.
    session_id, position : int
        The trial in the store (kept there with its samples and fixations).
    stimulus_id : str
        The stimulus shown.
    reason : str
        Why it was marked bad.
    """

    annotator: str
    session_id: int
    position: int
    stimulus_id: str
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class Study:
    """The sessions of one stimulus set in a study file, by stimulus and annotator.

    Parameters
    ----------
    path : Path
        The study file.
    stimulus_set : str
        Key of the stimulus set compared (sessions on one key saw the same images).
    stimuli_spec : str
        Dataset spec of the images (:func:`analysis.datasets.open_dataset`).
    split : str
        The dataset split the images came from ("" for the dataset's last split).
    annotators : tuple of str
        Pseudonyms of the participants with a trial, in the order of their first session.
    stimuli : tuple of str
        Ids of the stimuli with at least one trial, in natural order (``…/2`` before ``…/10``).
    viewings : mapping of str to mapping of str to Viewing
        Stimulus id → annotator → the annotator's trial on it.
    geometry : ScreenGeometry
        The screen of the first session: the visual span of the heatmaps is computed for it.
    stimulus_rect : StimulusRect
        Where the first session drew the images.
    stimulus_sets : tuple of str
        Every stimulus set in the file (this one included), for choosing another.
    notes : tuple of str
        What was left out and why (sessions without stimulus settings, repeated trials, other screens).
    flagged_left_out : tuple of FlaggedTrial
        The trials marked bad that are not in :attr:`viewings` (none when read with
        ``include_flagged=True``), in session and position order.
    flagged_included : tuple of FlaggedTrial
        The trials marked bad that are in :attr:`viewings` because the study was read with
        ``include_flagged=True`` (none otherwise), in session and position order.
    """

    path: Path
    stimulus_set: str
    stimuli_spec: str
    split: str
    annotators: tuple[str, ...]
    stimuli: tuple[str, ...]
    viewings: Mapping[str, Mapping[str, Viewing]]
    geometry: ScreenGeometry
    stimulus_rect: StimulusRect
    stimulus_sets: tuple[str, ...]
    notes: tuple[str, ...] = ()
    flagged_left_out: tuple[FlaggedTrial, ...] = ()
    flagged_included: tuple[FlaggedTrial, ...] = ()


def read_study(path: str | Path, *, stimulus_set: str | None = None, include_flagged: bool = False) -> Study:
    """Read every annotator's fixations on one stimulus set from a study file.

    Parameters
    ----------
    path : str or Path
        A study file written by labeling sessions (:class:`~tracking.store.SessionStore`).
    stimulus_set : str, optional
        The set to compare (a key from :attr:`Study.stimulus_sets`); by default the one with the most
        annotators (then the most trials).
    include_flagged : bool
        Also read the trials marked bad (:meth:`~tracking.store.SessionStore.flag_trial`). By default
        they are left out, as if never recorded, and listed in :attr:`Study.flagged_left_out`.

    Returns
    -------
    Study
        When an annotator labelled a stimulus in two sessions, the earlier trial counts (the earlier
        one not marked bad, unless ``include_flagged``).

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    StoreError
        When the file is not a study file (it is opened read-only and never changed), holds no session
        with stimulus settings, no finished trial (or only trials marked bad), or not the requested
        stimulus set.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the annotators' sessions).
    """
    file = Path(path)
    with _open_study(file) as store:
        participants = {p.participant_id: p.pseudonym for p in store.participants()}
        groups, notes = _group_sessions(store.sessions())
        if not groups:
            raise StoreError(
                f"{file} holds no labeling session with stimulus settings ('stimuli' and 'stimulus_set'). "
                "Record sessions with RBDM Studio's labeling screen."
            )
        key = _choose_set(groups, stimulus_set, store)
        viewings, flagged, included = _read_viewings(
            store, groups[key], participants, notes, include_flagged=include_flagged
        )
    if not viewings and flagged:
        raise StoreError(
            f"all {len(flagged)} finished trials of stimulus set {key!r} in {file} are marked bad; "
            "read it with include_flagged=True (rbdm compare --include-flagged) to compare them anyway."
        )
    if not viewings:
        raise StoreError(
            f"stimulus set {key!r} of {file} has no finished trial yet; label some images first."
        )
    first = groups[key][0]
    notes.extend(_screen_notes(groups[key], first))
    return Study(
        path=file.absolute(),
        stimulus_set=key,
        stimuli_spec=str(first.settings[SETTING_STIMULI]),
        split=str(first.settings.get(SETTING_SPLIT) or ""),
        annotators=_annotators(groups[key], participants, viewings),
        stimuli=tuple(sorted(viewings, key=_natural_key)),
        viewings=viewings,
        geometry=first.geometry,
        stimulus_rect=session_stimulus_rect(first),
        stimulus_sets=tuple(groups),
        notes=tuple(notes),
        flagged_left_out=tuple(flagged),
        flagged_included=tuple(included),
    )


def _annotators(
    sessions: Sequence[Session],
    participants: Mapping[int, str],
    viewings: Mapping[str, Mapping[str, Viewing]],
) -> tuple[str, ...]:
    """The pseudonyms with a trial, in the order of their first session."""
    seen = {annotator for by in viewings.values() for annotator in by}
    ordered = dict.fromkeys(participants[s.participant_id] for s in sessions)
    return tuple(annotator for annotator in ordered if annotator in seen)


def _group_sessions(sessions: Sequence[Session]) -> tuple[dict[str, list[Session]], list[str]]:
    """Sessions by stimulus-set key (oldest first); notes for those that cannot be compared."""
    groups: dict[str, list[Session]] = {}
    notes = []
    for session in sessions:
        spec = session.settings.get(SETTING_STIMULI)
        if not isinstance(spec, str) or not spec:
            notes.append(
                f"session {session.session_id} was left out: it does not say which stimuli it showed."
            )
            continue
        key = (
            session.settings.get(SETTING_STIMULUS_SET)
            or f"{spec}|split={session.settings.get(SETTING_SPLIT, '')}"
        )
        groups.setdefault(str(key), []).append(session)
    return groups, notes


def _choose_set(groups: Mapping[str, list[Session]], wanted: str | None, store: SessionStore) -> str:
    if wanted is not None:
        if wanted not in groups:
            raise StoreError(
                f"{store.path} has no sessions on stimulus set {wanted!r}; it has {sorted(groups)!r}."
            )
        return wanted

    def size(key: str) -> tuple[int, int]:
        sessions = groups[key]
        return len({s.participant_id for s in sessions}), sum(
            store.resume_point(s.session_id) for s in sessions
        )

    return max(groups, key=size)


def _open_study(file: Path) -> SessionStore:
    """The study file opened read-only: reading never creates, initialises or migrates it."""
    if not file.is_file():
        raise FileNotFoundError(f"no study file at {str(file)!r}. Record sessions from 'Study setup' first.")
    return SessionStore.open_read_only(file)


def _read_viewings(
    store: SessionStore,
    sessions: Sequence[Session],
    participants: Mapping[int, str],
    notes: list[str],
    *,
    include_flagged: bool,
) -> tuple[dict[str, dict[str, Viewing]], list[FlaggedTrial], list[FlaggedTrial]]:
    """Each annotator's first trial per stimulus, and the trials marked bad left out and included."""
    viewings: dict[str, dict[str, Viewing]] = {}
    left_out: list[FlaggedTrial] = []
    included: list[FlaggedTrial] = []
    for session in sessions:
        annotator = participants[session.participant_id]
        flagged = _flagged(store, session, annotator)
        (included if include_flagged else left_out).extend(flagged)
        positions = set() if include_flagged else {f.position for f in flagged}
        for viewing in _session_viewings(store, session, annotator, left_out=positions):
            by_annotator = viewings.setdefault(viewing.stimulus_id, {})
            if viewing.annotator in by_annotator:
                notes.append(
                    f"{viewing.annotator} labelled {viewing.stimulus_id} again in session "
                    f"{session.session_id}; the earlier trial "
                    f"(session {by_annotator[viewing.annotator].session_id}) counts."
                )
                continue
            by_annotator[viewing.annotator] = viewing
    return viewings, left_out, included


def _flagged(store: SessionStore, session: Session, annotator: str) -> list[FlaggedTrial]:
    """The session's trials marked bad, in position order."""
    return [
        FlaggedTrial(annotator, session.session_id, position, session.stimulus_order[position], reason)
        for position, reason in store.flagged_trials(session.session_id).items()
    ]


def _session_viewings(
    store: SessionStore, session: Session, annotator: str, *, left_out: Collection[int] = ()
) -> Iterator[Viewing]:
    """Every stored trial of a session with its fixations, but those at the ``left_out`` positions:
    the one reader of fixations from a study."""
    rect = session_stimulus_rect(session)
    for trial in store.trials(session.session_id):
        if trial.position in left_out:
            continue
        fixations = store.fixations(session.session_id, trial.position)
        yield Viewing(
            annotator=annotator,
            session_id=session.session_id,
            position=trial.position,
            stimulus_id=trial.stimulus_id,
            label=trial.label,
            fixations_screen_px=np.array(
                [(f.x_screen_px, f.y_screen_px) for f in fixations], dtype=np.float64
            ).reshape(-1, 2),
            durations_ms=np.array([f.duration_ms for f in fixations], dtype=np.float64),
            geometry=session.geometry,
            stimulus_rect=rect,
        )


def read_image_fixations(
    path: str | Path,
    image_shape: tuple[int, int],
    *,
    angle_deg: float = VISUAL_SPAN_DEG,
    include_flagged: bool = False,
) -> dict[str, list[ImageFixations]]:
    """Every recorded trial of a study file as fixations in the pixels of an ``image_shape`` stimulus.

    Unlike :func:`read_study` every session counts, whatever its stimulus set, and a repeated trial
    is kept: each trial is one more viewer of the image (gaze masks, RBDM §6). As there, a trial
    marked bad is left out unless ``include_flagged``. Fixations are mapped with
    :meth:`Viewing.on_image`: points off the drawn image are dropped, and the visual span is the
    session's screen's, scaled to the image.

    Parameters
    ----------
    path : str or Path
        A study file written by labeling sessions.
    image_shape : tuple of int
        ``(height, width)`` of the images the fixations are mapped into.
    angle_deg : float
        Visual angle of the visual span (:data:`analysis.geometry.VISUAL_SPAN_DEG`).
    include_flagged : bool
        Also read the trials marked bad (:meth:`~tracking.store.SessionStore.flag_trial`).

    Returns
    -------
    dict
        Stimulus id → one :class:`analysis.masked_dataset.ImageFixations` per trial that showed it, in
        session and trial order.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and §6.
    """
    by_stimulus: dict[str, list[ImageFixations]] = {}
    with _open_study(Path(path)) as store:
        participants = {p.participant_id: p.pseudonym for p in store.participants()}
        for session in store.sessions():
            annotator = participants[session.participant_id]
            flagged = () if include_flagged else store.flagged_trials(session.session_id)
            for viewing in _session_viewings(store, session, annotator, left_out=flagged):
                fixations = viewing.on_image(image_shape, angle_deg=angle_deg)
                by_stimulus.setdefault(viewing.stimulus_id, []).append(fixations)
    return by_stimulus


def session_stimulus_rect(session: Session) -> StimulusRect:
    """Where the session drew the image: its stored ``stimulus_rect``, else a centred square of its
    ``stimulus_size_px`` (1200 px, the RBDM size, when that is missing too).

    Raises
    ------
    StoreError
        When the stored rectangle is malformed.
    """
    stored = session.settings.get(SETTING_STIMULUS_RECT)
    if not isinstance(stored, Mapping):
        return session.geometry.stimulus_rect(float(session.settings.get(SETTING_STIMULUS_SIZE_PX, 1200.0)))
    try:
        return StimulusRect(
            float(stored["x_px"]),
            float(stored["y_px"]),
            float(stored["width_px"]),
            float(stored["height_px"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(
            f"session {session.session_id} stores a malformed stimulus_rect {dict(stored)!r} ({err})."
        ) from err


def _screen_notes(sessions: Sequence[Session], first: Session) -> list[str]:
    notes = [
        f"session {session.session_id} does not say where it drew the images; the RBDM square "
        "(1200 px, centred) is assumed."
        for session in sessions
        if not isinstance(session.settings.get(SETTING_STIMULUS_RECT), Mapping)
    ]
    span = first.geometry.visual_span_px(VISUAL_SPAN_DEG) / session_stimulus_rect(first).width_px
    for session in sessions[1:]:
        other = session.geometry.visual_span_px(VISUAL_SPAN_DEG) / session_stimulus_rect(session).width_px
        if not math.isclose(other, span, rel_tol=1e-3):
            notes.append(
                f"session {session.session_id} had another screen or image size (visual span "
                f"{other:.4f} vs {span:.4f} of the image width); heatmaps use the span of session "
                f"{first.session_id}."
            )
    return notes


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading digit runs as numbers: ``a/2`` before ``a/10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text))


# --- the stimulus images ------------------------------------------------------------------------


def load_stimulus_images(
    study: Study,
    *,
    stimuli: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, NDArray[np.float32]]:
    """Decode the study's stimuli from their dataset spec, as shown (RGB, the dataset's own size).

    Parameters
    ----------
    study : Study
        From :func:`read_study`.
    stimuli : sequence of str, optional
        Only these ids; all of :attr:`Study.stimuli` by default.
    progress : callable, optional
        Called with (fraction done, text) after each image.
    cancelled : callable, optional
        Polled between images; loading stops with :class:`~tracking.recording.Cancelled`.

    Returns
    -------
    dict of str to ndarray of float32, shape (H, W, 3)
        Intensities in [0, 1], by stimulus id in the order asked for.

    Raises
    ------
    ValueError
        When a stimulus is not in the dataset (the spec now points to other images).
    """
    wanted = list(study.stimuli if stimuli is None else stimuli)
    loader = open_dataset(study.stimuli_spec, rgb=True)
    split = study.split or loader.splits[-1]
    found: dict[str, NDArray[np.float32]] = {}
    for sample in _samples(loader, split, wanted):
        if cancelled is not None and cancelled():
            raise Cancelled("loading the stimulus images was cancelled.")
        found[sample.id] = sample.image
        if progress is not None:
            progress(len(found) / len(wanted), f"{len(found)} of {len(wanted)} images")
    missing = [s for s in wanted if s not in found]
    if missing:
        raise ValueError(
            f"{len(missing)} stimuli of the study are not in split {split!r} of {study.stimuli_spec!r} "
            f"(e.g. {missing[0]!r}). The dataset must be the one the sessions showed."
        )
    return {s: found[s] for s in wanted}


def _samples(loader: DatasetLoader, split: str, ids: Sequence[str]) -> Iterator[Any]:
    """The samples with these ids: looked up by position where the loader allows, else streamed."""
    wanted = set(ids)
    positions = _positions(loader, split, wanted)
    stream = loader.iter_samples(split, positions=positions)
    left = len(wanted)
    for sample in stream:
        if sample.id in wanted:
            left -= 1
            yield sample
            if left == 0:
                return


def _positions(loader: DatasetLoader, split: str, ids: set[str]) -> list[int] | None:
    if isinstance(loader, IndexedLoader):
        index = {entry.id: k for k, entry in enumerate(loader.entries(split))}
        return sorted(index[i] for i in ids if i in index)
    if isinstance(loader, SyntheticLoader):
        n_items = len(loader.labels(split))
        prefix = f"synthetic/{split}/"
        numbers = [i[len(prefix) :] for i in ids if i.startswith(prefix)]
        return sorted({int(n) for n in numbers if n.isdigit() and int(n) < n_items})
    return None


# --- the Trainer ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainerInfo:
    """A Trainer model file and what the comparison needs to know of it.

    Parameters
    ----------
    path : Path
        The ``.keras`` file.
    name : str
        Its id in the tables (the file name without suffix, like "IncV3" in RBDM Table 1).
    input_shape : tuple of int
        ``(height_px, width_px, channels)``: the comparison frame.
    labels : tuple of str
        The model's output order.
    """

    path: Path
    name: str
    input_shape: tuple[int, int, int]
    labels: tuple[str, ...] = LABELS


def trainer_info(path: str | Path) -> TrainerInfo:
    """Describe a Trainer from its model card (no TensorFlow), or by loading it if it has none.

    Raises
    ------
    FileNotFoundError
        When there is no model file at ``path``.
    """
    from analysis.training import ModelCard, card_path

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no trainer model at {str(file)!r}. Train one with 'rbdm train-trainer'.")
    card = card_path(file)
    if card.is_file():
        parsed = ModelCard.from_json(card.read_text(encoding="utf-8"))
        return TrainerInfo(file.absolute(), file.stem, parsed.input_shape, tuple(parsed.labels))
    from analysis.models import load_model_file

    model = load_model_file(file)
    try:
        return TrainerInfo(file.absolute(), file.stem, model.input_shape, LABELS[: model.n_classes])
    finally:
        model.close()


@dataclass(frozen=True, slots=True, eq=False)
class ModelRelevance:
    """A Trainer's relevance maps of the study's stimuli, at its input size (RBDM §5.2).

    Parameters
    ----------
    maps : mapping of str to ndarray of float32, shape (H, W)
        Stimulus id → relevance (channels summed).
    predicted : mapping of str to str
        Stimulus id → the label whose logit is explained (the model's prediction).
    from_cache : bool
        The maps were read from the disk cache.
    notes : tuple of str
        The analysis' data-quality warnings (e.g. all-zero maps), to show.
    """

    maps: Mapping[str, NDArray[np.float32]]
    predicted: Mapping[str, str]
    from_cache: bool = False
    notes: tuple[str, ...] = ()


def default_cache_dir(study_path: str | Path) -> Path:
    """Where relevance maps of a study are cached: a folder next to the study file."""
    file = Path(study_path)
    return file.with_name(f"{file.stem}-relevance-cache")


def model_relevance(
    images: Mapping[str, NDArray[np.float32]],
    trainer: TrainerInfo,
    *,
    analyzer: str = "deep_taylor",
    cache_dir: str | Path | None,
    progress: ProgressCallback | None = None,
) -> ModelRelevance:
    """The Trainer's relevance for each stimulus, the images resized to its input (cached on disk).

    Parameters
    ----------
    images : mapping of str to ndarray
        Stimulus id → image in [0, 1] (:func:`load_stimulus_images`).
    trainer : TrainerInfo
        The model.
    analyzer : str
        A key of :data:`analysis.saliency.ANALYZERS`; deep Taylor is the paper's.
    cache_dir : str or Path or None
        Cache folder (:func:`default_cache_dir`); None computes without caching.
    progress : callable, optional
        (fraction done, text) after each batch; not called on a cache hit.

    Returns
    -------
    ModelRelevance
        Data-quality notes (all-zero maps) come back as its ``notes`` instead of being warned, for the
        view or the command line to show; nothing here touches the process-wide warning filters, so it is
        safe on a worker thread.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.2 (deep Taylor relevance) and
       §5.3.2 (compared with the annotators' gaze).
    """
    from analysis.saliency import compute_relevance_maps

    ids = list(images)
    if not ids:
        return ModelRelevance(maps={}, predicted={})
    batch = np.stack([model_input_image(images[s], trainer.input_shape) for s in ids])

    def on_batch(done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, f"relevance of {done} of {total} images")

    result = compute_relevance_maps(
        trainer.path, batch, ids, analyzer=analyzer, cache_dir=cache_dir, on_batch=on_batch, warn_empty=False
    )  # empty maps are reported below, also on a cache hit
    empty = [s for s, m in zip(ids, result.maps, strict=True) if not m.any()]
    notes: list[str] = []
    if empty:
        notes.append(
            f"{len(empty)} of {len(ids)} relevance maps are all zero (e.g. {empty[0]}): {analyzer} explains "
            "nothing where the logit is <= 0. The model has no heatmap on those stimuli, and its rows of "
            "the study table average over the others."
        )
    labels = trainer.labels
    predicted = {
        s: labels[int(k)] if int(k) < len(labels) else str(int(k))
        for s, k in zip(ids, result.class_index, strict=True)
    }
    maps = {s: np.asarray(m, dtype=np.float32) for s, m in zip(ids, result.maps, strict=True)}
    return ModelRelevance(maps=maps, predicted=predicted, from_cache=result.from_cache, notes=tuple(notes))


# --- the comparison -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class StimulusComparison:
    """Everything the comparison shows for one stimulus (RBDM Figure 7 and Table 1 for one image).

    Parameters
    ----------
    stimulus_id : str
        The stimulus.
    image : ndarray of float32, shape (H, W, 3)
        The image as shown (its own size).
    shape : tuple of int
        ``(height, width)`` of the comparison frame (the heatmaps' grid).
    span : VisualSpan
        The heatmap kernel in frame pixels.
    n_points : int
        n: the model's heatmap is built from its n most relevant pixels.
    points : mapping of str to ndarray, shape (N, 2)
        Map id → its points ``(x, y)`` in frame pixels: an annotator's fixations on the image, the
        model's n most relevant pixels.
    heatmaps : mapping of str to ndarray of float32, shape ``shape``
        Annotators first (in study order), then the model.
    table : ComparisonTable
        Every pair of heatmaps with every metric.
    labels : mapping of str to str
        Map id → the label its annotator gave (or the model predicted).
    """

    stimulus_id: str
    image: NDArray[np.float32]
    shape: tuple[int, int]
    span: VisualSpan
    n_points: int
    points: Mapping[str, Points]
    heatmaps: Mapping[str, NDArray[np.float32]]
    table: ComparisonTable
    labels: Mapping[str, str]

    @property
    def areas(self) -> dict[str, NDArray[np.bool_]]:
        """Each heatmap's perceived area (pixels > 0), whose contour the figure draws."""
        return {key: heat > 0 for key, heat in self.heatmaps.items()}


@dataclass(frozen=True, slots=True, eq=False)
class StudyTables:
    """The comparison tables of a study: per stimulus, and their mean (RBDM Table 1).

    Parameters
    ----------
    stimuli : mapping of str to ComparisonTable
        Stimulus id → its table, in study order.
    study : ComparisonTable
        :func:`analysis.study.study_table` of those.
    n_points : int
        The n used for the model's heatmaps.
    """

    stimuli: Mapping[str, ComparisonTable]
    study: ComparisonTable
    n_points: int

    @property
    def pair_counts(self) -> dict[tuple[str, str], int]:
        """How many stimuli each pair ``(id_1, id_2)`` was compared on (a value that is not NaN)."""
        compared = (row for table in self.stimuli.values() for row in table.rows)
        return dict(Counter((row.id_1, row.id_2) for row in compared if not np.isnan(row.values).all()))


@dataclass(frozen=True, slots=True)
class _State:
    """What the user chose and what was computed; replaced whole, so a worker reads one snapshot."""

    annotators: tuple[str, ...]
    relevance: ModelRelevance | None = None


@dataclass(frozen=True, slots=True)
class _Inputs:
    """The inputs of :func:`analysis.perception.compare_stimulus` for one stimulus."""

    shape: tuple[int, int]
    span: VisualSpan
    fixations: dict[str, Points]
    relevance: dict[str, NDArray[np.float32]]


class StudyComparison:
    """The annotators' gaze heatmaps and a Trainer's saliency heatmaps of a study, compared (RBDM §5.3.2).

    The Qt-free model of the comparison view and of ``rbdm compare``. The comparison frame is the
    Trainer's input when there is a Trainer, else each image's own size (see the module notes).

    Parameters
    ----------
    study : Study
        From :func:`read_study`.
    images : mapping of str to ndarray
        Every stimulus of the study, as shown (:func:`load_stimulus_images`).
    trainer : TrainerInfo, optional
        The model whose relevance joins the comparison once :meth:`set_relevance` hands it in.
    angle_deg : float
        Visual angle of the visual span (5° after Blignaut 2010, as in RBDM §5.3.2).

    Notes
    -----
    ``changed`` (:class:`~tracking.protocol.Listeners` of str) is emitted with ``"annotators"`` or
    ``"relevance"`` after the choice of annotators or the model's relevance changed. Call the setters
    on one thread; :meth:`stimulus` and :meth:`tables` may run on a worker thread, each on one
    snapshot of the state.

    A stimulus whose relevance map is all zero (deep Taylor explains nothing when the logit is <= 0)
    has no model heatmap: it has no n most relevant pixels. The model's rows of the study table then
    average over the other stimuli (:func:`analysis.study.study_table`).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, Table 1 and Figure 7.
    """

    def __init__(
        self,
        study: Study,
        images: Mapping[str, NDArray[np.float32]],
        *,
        trainer: TrainerInfo | None = None,
        angle_deg: float = VISUAL_SPAN_DEG,
    ) -> None:
        missing = [s for s in study.stimuli if s not in images]
        if missing:
            raise ValueError(f"images must hold every stimulus of the study; {missing[:3]!r} are missing.")
        self.study = study
        self.images = dict(images)
        self.trainer = trainer
        self.angle_deg = angle_deg
        self.model_id = None if trainer is None else _model_id(trainer.name, study.annotators)
        self.changed: Listeners[str] = Listeners()
        self._state = _State(annotators=study.annotators)

    # --- state ------------------------------------------------------------------------------------

    @property
    def annotators(self) -> tuple[str, ...]:
        """The annotators compared, in study order."""
        return self._state.annotators

    def set_annotators(self, annotators: Sequence[str]) -> bool:
        """Compare these annotators (any subset of the study's); returns whether the choice changed."""
        chosen = set(annotators)
        unknown = sorted(chosen - set(self.study.annotators))
        if unknown:
            raise ValueError(f"unknown annotators {unknown!r}; the study has {self.study.annotators!r}.")
        ordered = tuple(a for a in self.study.annotators if a in chosen)
        if ordered == self._state.annotators:
            return False
        self._state = _State(ordered, self._state.relevance)
        self.changed.emit("annotators")
        return True

    @property
    def relevance(self) -> ModelRelevance | None:
        """The Trainer's relevance maps, once handed in."""
        return self._state.relevance

    def set_relevance(self, relevance: ModelRelevance | None) -> None:
        """Hand in (or, with None, drop) the Trainer's relevance maps from :func:`model_relevance`."""
        if relevance is not None and self.trainer is None:
            raise ValueError("this comparison has no trainer; create it with trainer=trainer_info(path).")
        if relevance is not None:
            missing = [s for s in self.study.stimuli if s not in relevance.maps]
            if missing:
                raise ValueError(f"relevance is missing stimuli {missing[:3]!r}; compute it for all of them.")
        self._state = _State(self._state.annotators, relevance)
        self.changed.emit("relevance")

    # --- derived ----------------------------------------------------------------------------------

    def shape(self, stimulus_id: str) -> tuple[int, int]:
        """The comparison frame of a stimulus: the Trainer's input, else the image's size."""
        if self.trainer is not None:
            return self.trainer.input_shape[0], self.trainer.input_shape[1]
        height, width = self.images[stimulus_id].shape[:2]
        return int(height), int(width)

    def span(self, stimulus_id: str) -> VisualSpan:
        """The heatmap kernel of a stimulus in frame pixels, for the first session's screen."""
        study = self.study
        return visual_span_in_image(
            study.geometry, study.stimulus_rect, self.shape(stimulus_id), angle_deg=self.angle_deg
        )

    def fixations(self, stimulus_id: str) -> dict[str, Points]:
        """Each chosen annotator's fixations on the stimulus, in frame pixels (those who saw it)."""
        return self._fixations(self._state, stimulus_id)

    @property
    def n_points(self) -> int:
        """n: the chosen annotators' mean number of fixations on an image (all annotators' if none is
        chosen), rounded, at least 1 (RBDM §5.3.2)."""
        return self._n_points(self._state)

    def stimulus(self, stimulus_id: str) -> StimulusComparison:
        """Heatmaps, points and the metrics table of one stimulus (RBDM Figure 7)."""
        if stimulus_id not in self.study.viewings:
            raise KeyError(f"no stimulus {stimulus_id!r} in the study; it has {len(self.study.stimuli)}.")
        state = self._state
        n_points = self._n_points(state)
        inputs = self._inputs(state, stimulus_id)
        heatmaps = stimulus_heatmaps(
            inputs.fixations, inputs.relevance, inputs.shape, inputs.span, n_points=n_points
        )
        points = dict(inputs.fixations)
        points.update({key: top_n_points(r, n_points) for key, r in inputs.relevance.items()})
        return StimulusComparison(
            stimulus_id=stimulus_id,
            image=self.images[stimulus_id],
            shape=inputs.shape,
            span=inputs.span,
            n_points=n_points,
            points=points,
            heatmaps=heatmaps,
            table=compare(heatmaps, fixations=inputs.fixations),
            labels=self._labels(state, stimulus_id),
        )

    def tables(
        self, *, progress: ProgressCallback | None = None, cancelled: Callable[[], bool] | None = None
    ) -> StudyTables:
        """Every stimulus's table and their mean, RBDM Table 1 (stimuli with fewer than two maps add none).

        Raises
        ------
        Cancelled
            When ``cancelled()`` returned True between stimuli.
        """
        state = self._state
        n_points = self._n_points(state)
        tables: dict[str, ComparisonTable] = {}
        for k, stimulus_id in enumerate(self.study.stimuli):
            if cancelled is not None and cancelled():
                raise Cancelled("comparing the study was cancelled.")
            inputs = self._inputs(state, stimulus_id)
            table = compare_stimulus(
                inputs.fixations, inputs.relevance, inputs.shape, inputs.span, n_points=n_points
            )
            if table.rows:
                tables[stimulus_id] = table
            if progress is not None:
                progress((k + 1) / len(self.study.stimuli), f"{k + 1} of {len(self.study.stimuli)} stimuli")
        return StudyTables(stimuli=tables, study=study_table(list(tables.values())), n_points=n_points)

    # --- helpers ----------------------------------------------------------------------------------

    def _fixations(self, state: _State, stimulus_id: str) -> dict[str, Points]:
        shape = self.shape(stimulus_id)
        seen = self.study.viewings[stimulus_id]
        return {a: seen[a].fixations_image_px(shape) for a in state.annotators if a in seen}

    def _n_points(self, state: _State) -> int:
        annotators = set(state.annotators or self.study.annotators)
        counts = [
            len(viewing.fixations_image_px(self.shape(stimulus_id)))
            for stimulus_id, by in self.study.viewings.items()
            for annotator, viewing in by.items()
            if annotator in annotators
        ]
        return mean_fixation_count(counts)

    def _inputs(self, state: _State, stimulus_id: str) -> _Inputs:
        relevance = {}
        if self._has_model_map(state, stimulus_id):
            assert state.relevance is not None and self.model_id is not None
            relevance[self.model_id] = state.relevance.maps[stimulus_id]
        return _Inputs(
            shape=self.shape(stimulus_id),
            span=self.span(stimulus_id),
            fixations=self._fixations(state, stimulus_id),
            relevance=relevance,
        )

    def _labels(self, state: _State, stimulus_id: str) -> dict[str, str]:
        seen = self.study.viewings[stimulus_id]
        labels = {a: seen[a].label for a in state.annotators if a in seen}
        if self._has_model_map(state, stimulus_id):
            assert state.relevance is not None and self.model_id is not None
            labels[self.model_id] = state.relevance.predicted.get(stimulus_id, "")
        return labels

    def _has_model_map(self, state: _State, stimulus_id: str) -> bool:
        """Whether the model has a heatmap here: an all-zero relevance map has no n most relevant pixels."""
        if state.relevance is None or self.model_id is None:
            return False
        return bool(np.any(state.relevance.maps[stimulus_id]))


def _model_id(name: str, annotators: Sequence[str]) -> str:
    """The model's row id: its name, unless an annotator has that pseudonym."""
    return name if name not in annotators else f"{name} (model)"
