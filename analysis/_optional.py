"""Guarded imports of heavy optional dependencies (TensorFlow, iNNvestigate).

Modules that need TensorFlow call these helpers inside functions, so that importing
:mod:`analysis` stays fast and works without TensorFlow installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["import_innvestigate", "import_optional", "import_tensorflow"]

_INSTALL_HINT = "Install the pinned environment with 'make install' (or 'pip install -r requirements.lock')."


def import_optional(module: str, *, caller: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise an :class:`ImportError` that names ``caller`` and the fix.

    Parameters
    ----------
    module : str
        Dotted module name to import.
    caller : str
        What needs the module, shown in the error message.
    package : str, optional
        The distribution to install, when it differs from ``module``.

    Raises
    ------
    ImportError
        When the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        name = package or module
        raise ImportError(
            f"{caller} needs {name!r}, which is not installed ({err}). {_INSTALL_HINT}"
        ) from err


def import_tensorflow(caller: str) -> ModuleType:
    """Import TensorFlow quietly (its C++ log level lowered) for ``caller``."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return import_optional("tensorflow", caller=caller, package="tensorflow-cpu")


def import_innvestigate(caller: str) -> ModuleType:
    """Import iNNvestigate (which needs TensorFlow) for ``caller``."""
    import_tensorflow(caller)
    return import_optional("innvestigate", caller=caller)
