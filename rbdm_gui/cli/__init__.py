"""The ``rbdm`` command line: one ``cmd_<name>`` function per subcommand (:mod:`rbdm_gui.cli.main`).

Qt-free like :mod:`rbdm_gui.workflows` (an import contract in ``pyproject.toml``); only ``rbdm gui``
imports the desktop app, inside the command that opens it.
"""
