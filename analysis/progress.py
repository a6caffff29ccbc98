"""The one progress-callback type of long work, in every package: ``report(fraction, text)``.

Loading a study's stimuli, computing relevance maps, training the TP action-unit model or a GUI task
all report how far they are through a plain callable, never a Qt signal; the GUI's task runner
(:func:`rbdm_gui.screens.workers.run_task`) forwards the calls to its thread. The experiment grid's richer
records are :class:`analysis.experiment.ExperimentProgress`, a different idea with its own name.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback"]

#: Receives (fraction done in [0, 1], a short text for a status line).
ProgressCallback = Callable[[float, str], None]
