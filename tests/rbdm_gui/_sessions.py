"""Study settings of the labeling-session tests: a small synthetic session on the offscreen screen."""

from __future__ import annotations

from pathlib import Path

from rbdm_gui.workflows.settings import StudySettings

__all__ = ["SCREEN", "settings_for"]

#: The offscreen platform's screen is 800 × 800 px at 60 Hz.
SCREEN = 800


def settings_for(tmp_path: Path, *, n: int, **changes: object) -> StudySettings:
    """``n`` synthetic 64 px faces, the mouse simulator, keyboard labels, no calibration; ``changes`` win."""
    values: dict[str, object] = {
        "study_path": str(tmp_path / "study.sqlite"),
        "participant": "P01",
        "stimuli": "synthetic:n=1,size=64",
        "max_stimuli": n,
        "seed": 3,
        "driver": "mouse",
        "recogniser": "keyboard",
        "screen_width_px": SCREEN,
        "screen_height_px": SCREEN,
        "diagonal_in": 15.0,
        "distance_cm": 60.0,
        "calibrate": False,
    }
    values.update(changes)
    return StudySettings(**values)  # type: ignore[arg-type]
