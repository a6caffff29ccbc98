"""How the app's Qt paints: on the GUI thread alone, without Qt's GUI thread pool.

Qt's raster engine hands a large fill or image conversion (a repaint of the learning curves' plots, say)
to a pool of helper threads and blocks the GUI thread until they finish. On a machine whose cores are
busy (an experiment training in the worker process, another job) those helpers wait for a core, and the
GUI thread waits for them: a redraw of the Experiments screen's three plots took 25–33 ms of wall time
(16–19 ms of the GUI thread's own CPU) with the pool and 9–10 ms without it (``QT_NO_GUI_THREADPOOL``),
on 2 cores with one busy (issue 22, ``python -m benchmarks.gui_latency``). The pool is created once, at
the first large fill, and reads ``QT_NO_GUI_THREADPOOL`` then: :func:`paint_on_gui_thread` must run
before the first window is shown.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["GUI_THREADPOOL_VARIABLE", "paint_on_gui_thread"]

#: Qt's switch: set (to anything), Qt paints without its GUI thread pool.
GUI_THREADPOOL_VARIABLE: Final = "QT_NO_GUI_THREADPOOL"


def paint_on_gui_thread() -> None:
    """Switch Qt's GUI thread pool off for this process (and the processes it starts).

    Qt reads the variable once, when the pool is first wanted; call this before the first window is
    shown. A value already set is kept (Qt treats any value, even an empty one, as "off").
    """
    os.environ.setdefault(GUI_THREADPOOL_VARIABLE, "1")
