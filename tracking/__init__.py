"""Recording: tracker drivers, fixation detection and session storage. No Qt here."""

from __future__ import annotations

__all__: list[str] = []
