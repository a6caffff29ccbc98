"""The main window: a navigation list of screens beside the screen on show.

Screens are given as ``(title, factory)`` pairs; a factory builds its view the first time it is
chosen. The study setup is the first screen; the comparison view, the experiment launcher and the
prototypes view are added as further pairs (see :func:`rbdm_gui.screens.app.default_pages`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMainWindow, QMessageBox, QStackedWidget, QWidget

from rbdm_gui.screens._layout import sidebar_splitter

__all__ = ["MainWindow", "Page"]

Page = tuple[str, Callable[[], QWidget]]
"""A screen of the main window: its title in the navigation, and a function building its view."""


class MainWindow(QMainWindow):
    """RBDM Studio's main window.

    Parameters
    ----------
    pages : sequence of (str, callable)
        The screens in navigation order; the first is shown at once.

    Signals
    -------
    closing
        The window is about to close (views save their settings).
    monitor_requested
        Session → Live monitor (Ctrl+M): open the experimenter's live monitor.

    Notes
    -----
    Before closing, every built view with a ``closing_question()`` method is asked; a non-empty
    answer (a run still going on) is put to the user, who may keep the window open.
    """

    closing = Signal()
    monitor_requested = Signal()

    def __init__(self, pages: Sequence[Page], *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("RBDM Studio")
        self._factories: dict[str, Callable[[], QWidget]] = {}
        self._views: dict[str, QWidget] = {}
        self.navigation = QListWidget()
        self.navigation.setMaximumWidth(220)
        self.navigation.setMinimumWidth(150)
        self.stack = QStackedWidget()
        splitter = sidebar_splitter(self.navigation, self.stack, side_px=180)
        self.navigation.setStyleSheet("QListWidget::item { padding: 6px 8px; }")
        self.setCentralWidget(splitter)
        self.navigation.currentItemChanged.connect(self._on_current)
        for title, factory in pages:
            self.add_page(title, factory)
        monitor = self.menuBar().addMenu("&Session").addAction("Live &monitor")
        monitor.setShortcut("Ctrl+M")
        monitor.triggered.connect(self.monitor_requested.emit)
        if pages:
            self.navigation.setCurrentRow(0)

    def add_page(self, title: str, factory: Callable[[], QWidget]) -> None:
        """Append a screen to the navigation."""
        if title in self._factories:
            raise ValueError(f"a page titled {title!r} exists already; choose another title.")
        self._factories[title] = factory
        self.navigation.addItem(QListWidgetItem(title))

    @property
    def titles(self) -> list[str]:
        """The screens' titles in navigation order."""
        return [self.navigation.item(k).text() for k in range(self.navigation.count())]

    def view(self, title: str) -> QWidget | None:
        """The view of a screen, if it was built already."""
        return self._views.get(title)

    def show_page(self, title: str) -> QWidget:
        """Show a screen (building its view if needed) and return its view."""
        row = self.titles.index(title)
        self.navigation.setCurrentRow(row)
        return self._build(title)

    def notify(self, text: str, *, timeout_ms: int = 10_000) -> None:
        """Show a short message in the status bar."""
        self.statusBar().showMessage(text, timeout_ms)

    def _build(self, title: str) -> QWidget:
        if title not in self._views:
            view = self._factories[title]()
            self._views[title] = view
            self.stack.addWidget(view)
        return self._views[title]

    def _on_current(self, current: QListWidgetItem | None, previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.stack.setCurrentWidget(self._build(current.text()))

    def closing_questions(self) -> list[str]:
        """What the built views want to ask before the window closes."""
        questions = []
        for view in self._views.values():
            ask = getattr(view, "closing_question", None)
            question = ask() if callable(ask) else ""
            if question:
                questions.append(str(question))
        return questions

    def closeEvent(self, event: QCloseEvent) -> None:
        questions = self.closing_questions()
        if questions:
            answer = QMessageBox.question(
                self,
                "Quit RBDM Studio?",
                "\n\n".join(questions),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.closing.emit()
        for view in self._views.values():  # views stop their work (an experiment is cancelled cleanly)
            view.close()
        super().closeEvent(event)
