"""The Qt-free workflow layer of the app: what the screens and the command line do, without widgets.

Reading and writing the app's files (settings, logs, figures, bundled assets), the experiment form and
its worker process, the live monitor's numbers, the microphone and recogniser set-up. Nothing here
imports PySide6 or pyqtgraph (an import contract in ``pyproject.toml``, run by the tests): a module that
needs a widget belongs in :mod:`rbdm_gui.screens`. Screens and commands call into this package; it calls
into :mod:`tracking` and :mod:`analysis`.
"""
