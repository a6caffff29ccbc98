"""The PySide6/pyqtgraph desktop layer over :mod:`analysis` and :mod:`tracking`.

Importing this package does not import Qt: the command line (:mod:`rbdm_gui.cli.main`) lives here too
and imports Qt only for the subcommands that open windows.
"""

from __future__ import annotations

__all__: list[str] = []
