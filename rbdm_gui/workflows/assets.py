"""The models the app ships in the repository's ``assets/`` folder, each made by the command in its card."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "DEFAULT_TRAINER", "DEFAULT_UNIT_MODEL"]

#: The ``assets/`` folder next to the packages.
ASSETS = Path(__file__).resolve().parents[2] / "assets"

#: The Trainer (``rbdm train-trainer --out assets/trainer_small_cnn.keras``; its JSON card has the command).
DEFAULT_TRAINER = ASSETS / "trainer_small_cnn.keras"

#: The action unit model for temporal prototypes (`rbdm prototypes --save-model assets/action_units.keras`)
DEFAULT_UNIT_MODEL = ASSETS / "action_units.keras"
