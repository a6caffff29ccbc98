"""The PySide6/pyqtgraph screens: widgets that show and edit what :mod:`rbdm_gui.workflows` computes.

:mod:`rbdm_gui.screens.app` builds the main window from the pages; each page module holds its widgets,
and numbers, files and policy live in the Qt-free layers below.
"""
