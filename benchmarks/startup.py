"""Start-up time of the desktop app: from a fresh interpreter to the first window on screen.

Each case runs in its own fresh Python process (nothing cached in ``sys.modules``) and reports the
time from the process's start (``time.perf_counter`` at the first line of the script, after the
interpreter itself has started) to the window being shown and its first events processed:

- ``bare Qt window``: ``QApplication`` and an empty ``QMainWindow``, the baseline of the ratio column;
- ``RBDM Studio``: :class:`rbdm_gui.screens.app.StudioApp` with the default pages, on a fresh settings folder;
- ``+ each screen``: the same, then every screen built once (Compare, Experiments, Temporal prototypes),
  which is where pyqtgraph, scikit-learn and the study readers load.

The "process" column adds the interpreter's own start (wall time of the whole child process until it
printed). The app's budget is 2 s to the first window (issue 19). Heavy modules are listed per case:
TensorFlow must not be among them before a screen trains or computes relevance.

Run (offscreen Qt unless a display is set)::

    .venv/bin/python -m benchmarks.startup
    .venv/bin/python -m benchmarks.startup --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import print_table

__all__ = ["main", "measure"]

_ROOT = Path(__file__).resolve().parents[1]
_HEAVY = ("tensorflow", "pyqtgraph", "sklearn", "scipy", "matplotlib", "innvestigate")

_CHILD = """
import time
t0 = time.perf_counter()
import json, sys
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
case = sys.argv[1]
if case == "bare":
    window = QMainWindow()
    window.resize(1280, 800)
else:
    from rbdm_gui.screens.app import StudioApp
    window = StudioApp().window
window.show()
app.processEvents()
first_window_s = time.perf_counter() - t0
if case == "screens":
    for title in window.titles:
        window.show_page(title)
        app.processEvents()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"first_window_s": first_window_s, "all_s": time.perf_counter() - t0, "heavy": heavy}}))
"""


def measure(case: str, *, folder: Path) -> dict[str, object]:
    """One fresh process of ``case`` ("bare", "app" or "screens"); its timings and heavy modules."""
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": os.environ.get(
            "QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else ""
        ),
        "RBDM_STUDIO_CONFIG_DIR": str(folder / "config"),
        "RBDM_STUDIO_DATA_DIR": str(folder / "data"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH", "")])),
    }
    if not env["QT_QPA_PLATFORM"]:
        del env["QT_QPA_PLATFORM"]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(heavy=_HEAVY), case],
        env=env,
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per case (median reported)")
    args = parser.parse_args(argv)
    cases = (("bare Qt window", "bare"), ("RBDM Studio", "app"), ("RBDM Studio + each screen", "screens"))
    medians: dict[str, tuple[float, float, float, list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="rbdm-startup-") as tmp:
        for _, case in cases:
            runs = [measure(case, folder=Path(tmp)) for _ in range(args.repeat)]
            medians[case] = (
                statistics.median(float(r["first_window_s"]) for r in runs),  # type: ignore[arg-type]
                statistics.median(float(r["all_s"]) for r in runs),  # type: ignore[arg-type]
                statistics.median(r["process_s"] for r in runs),  # type: ignore[misc]
                list(runs[-1]["heavy"]),  # type: ignore[call-overload]
            )
    base = medians["bare"][0]
    rows = []
    for name, case in cases:
        first, everything, process, heavy = medians[case]
        shown = everything if case == "screens" else first
        rows.append([name, shown, f"{shown / base:.1f}×", process, ", ".join(heavy) or "–"])
    print_table(
        f"Time to the first window, median of {args.repeat} fresh processes (ratio: to a bare Qt window)",
        ["case", "script s", "ratio", "process s", "heavy modules loaded"],
        rows,
    )


if __name__ == "__main__":
    main()
