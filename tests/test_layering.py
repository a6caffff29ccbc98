"""The layering rules of STYLE.md §1, checked: no Qt or TensorFlow below the GUI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fresh_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return set(out.split())


def _all_submodules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_analysis_and_tracking_import_without_qt_or_tensorflow() -> None:
    modules = _all_submodules("analysis") + _all_submodules("tracking")
    loaded = _fresh_modules("\n".join(f"import {m}" for m in modules))
    assert set(modules) <= loaded
    for heavy in ("PySide6", "pyqtgraph", "tensorflow", "innvestigate", "rbdm_gui"):
        assert heavy not in loaded, f"importing analysis/tracking pulled in {heavy}"


def test_command_line_help_imports_neither_qt_nor_tensorflow() -> None:
    loaded = _fresh_modules("import rbdm_gui.cli.main")
    assert "PySide6" not in loaded and "tensorflow" not in loaded


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_layer_and_the_command_line_import_without_qt() -> None:
    modules = _all_submodules("rbdm_gui/workflows") + _all_submodules("rbdm_gui/cli")
    assert "rbdm_gui.workflows.settings" in modules and "rbdm_gui.cli.main" in modules
    loaded = _fresh_modules("\n".join(f"import {m}" for m in modules))
    assert set(modules) <= loaded
    for qt in ("PySide6", "pyqtgraph", "rbdm_gui.screens"):
        assert qt not in loaded, f"importing the workflow layer or the command line pulled in {qt}"
