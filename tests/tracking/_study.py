"""A small recorded study with known fixations, written as the labeling sessions write it.

Two participants label the same three synthetic faces in different random orders on a 1920 × 1080
screen; each trial's fixations are known in the pixels of the 64 × 64 px image, written to the store
in screen pixels (as the labeling screen draws the image in its stimulus square), plus one fixation
beside the image that the comparison must drop. Used by tests/tracking/test_study.py and
tests/rbdm_gui/test_comparison_view.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from tracking.protocol import ProtocolTiming, stimulus_order
from tracking.records import Fixation, PhaseOnsets, Trial
from tracking.store import SessionStore

GEOMETRY = ScreenGeometry(1920, 1080, 24.0, 70.0)
RECT = GEOMETRY.stimulus_rect()  # the 1200 px square shrunk to 1080 px: x 420..1500, y 0..1080
SPEC = "synthetic:n=2,size=64"
SPLIT = "test"
IMAGE_SHAPE = (64, 64)
STIMULI = ("synthetic/test/2", "synthetic/test/5", "synthetic/test/10")  # natural order
PARTICIPANTS = ("P01", "P02")
OFF_IMAGE_SCREEN_PX = (200.0, 540.0)  # left of the image: dropped
LABELS = {"P01": "happy", "P02": "sad"}


def stimulus_set_key(spec: str = SPEC) -> str:
    """As rbdm_gui.workflows.settings.StudySettings.stimulus_set_key writes it."""
    return f"{spec}|split={SPLIT}|max=0|seed=0"


def session_settings(spec: str = SPEC) -> dict[str, Any]:
    """The settings a labeling session stores (the keys of rbdm_gui.screens.app.session_settings)."""
    return {
        "stimulus_set": stimulus_set_key(spec),
        "stimuli": spec,
        "split": SPLIT,
        "seed": 0,
        "labels": ["neutral", "happy", "sad"],
        "timing": ProtocolTiming().as_dict(),
        "refresh_hz": 60.0,
        "frame_counted": True,
        "stimulus_size_px": 1200.0,
        "stimulus_rect": {
            "x_px": RECT.x_px,
            "y_px": RECT.y_px,
            "width_px": RECT.width_px,
            "height_px": RECT.height_px,
        },
        "stimulus_scale": RECT.width_px / 1200.0,
        "detector": "idt",
        "driver_options": {},
        "microphone": "",
    }


def fixations_image_px(
    participants: tuple[str, ...] = PARTICIPANTS,
) -> dict[tuple[str, str], NDArray[np.float64]]:
    """(participant, stimulus) → fixations on the image, (x, y) in its pixels; counts 3 to 6."""
    truth = {}
    for participant in participants:
        rng = np.random.default_rng(list(participant.encode()))
        for stimulus in STIMULI:
            n = int(rng.integers(3, 7))
            truth[participant, stimulus] = rng.uniform(4.0, 59.0, size=(n, 2))
    return truth


def image_to_screen(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """The screen pixels that screen_to_image maps onto these image points (its inverse)."""
    scale = np.array([IMAGE_SHAPE[1] / RECT.width_px, IMAGE_SHAPE[0] / RECT.height_px])
    origin = np.array([RECT.x_px, RECT.y_px])
    screen: NDArray[np.float64] = (points + 0.5) / scale + origin - 0.5
    return screen


def write_study(
    path: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    participants: tuple[str, ...] = PARTICIPANTS,
    unfinished: tuple[str, ...] = (),
) -> dict[tuple[str, str], NDArray[np.float64]]:
    """Record one session per participant over STIMULI, as the labeling protocol does; return the truth.

    The sessions of the ``unfinished`` participants end before their last trial (never recorded).
    """
    truth = fixations_image_px(participants)
    with SessionStore(path) as store:
        for k, participant in enumerate(participants):
            pid = store.create_participant(participant)
            order = stimulus_order(STIMULI, seed=k + 1)
            sid = store.create_session(
                pid,
                settings=dict(settings) if settings is not None else session_settings(),
                geometry=GEOMETRY,
                tracker="mouse",
                recogniser="keyboard",
                stimulus_order=order,
            )
            shown = order[:-1] if participant in unfinished else order
            for position, stimulus in enumerate(shown):
                _record(
                    store,
                    sid,
                    position,
                    stimulus,
                    truth[participant, stimulus],
                    LABELS.get(participant, "fear"),
                )
    return truth


def _record(
    store: SessionStore, sid: int, position: int, stimulus: str, points: NDArray[np.float64], label: str
) -> None:
    start = 10_000.0 * (position + 1)
    phases = PhaseOnsets(start, start + 500.0, start + 700.0, start + 1200.0, start + 4200.0)
    screen = np.vstack([image_to_screen(points), OFF_IMAGE_SCREEN_PX])
    fixations = [
        Fixation(start + 1300.0 + 300.0 * j, 250.0, float(x), float(y), 30) for j, (x, y) in enumerate(screen)
    ]
    trial = Trial(position, stimulus, phases, label, "keyboard", response_time_ms=1500.0)
    store.record_trial(sid, trial, fixations)


def train_tiny_trainer(path: Path) -> Path:
    """A small CNN trained for 2 epochs on 64 synthetic 48 px faces, saved with its card."""
    from analysis.datasets.synthetic_faces import make_faces
    from analysis.training import NO_AUGMENTATION, save_trained, train_trainer

    rng = np.random.default_rng(3)
    images, labels, _ = make_faces(64, rng=rng)
    result = train_trainer(
        images[:48],
        labels[:48],
        images[48:],
        labels[48:],
        epochs=2,
        batch_size=16,
        augmentation=NO_AUGMENTATION,
        seed=0,
    )
    save_trained(path, result, data={"dataset": "synthetic", "n": 64})
    result.model.close()
    return path
