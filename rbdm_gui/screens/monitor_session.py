"""Binds a running labeling session to the live monitor: feeding, throttling, and the controls.

:class:`SessionMonitor` attaches a :class:`~rbdm_gui.workflows.monitor_model.MonitorModel` to a
:class:`~rbdm_gui.screens.app.SessionRun` once it records
(:func:`~rbdm_gui.workflows.monitor_model.attach_monitor`:
the listeners only queue), and redraws the :class:`~rbdm_gui.screens.monitor_view.MonitorPanel` at most
:data:`~rbdm_gui.workflows.monitor_model.MONITOR_RATE_HZ` times a second, never at the participant's frame
rate.
While the labeling screen runs, a redraw follows one of its presented frames (its ``frames``
listeners), so that it falls into the idle time before the participant's next frame instead of
delaying it; a timer takes over when no frame comes (calibration, the session's end).
Each stored trial and each trial marked bad asks for the running Table 1 again
(:class:`~rbdm_gui.workflows.monitor_table.RunningTable`), computed in a worker process
(:class:`~rbdm_gui.workflows.monitor_table.TableRunner`) which waits while the participant's screen
shows the timed phases. The panel's controls become session calls: pause and resume the labeling
screen, re-calibrate before the next trial, and flag a trial as bad in the study file (on a worker
thread, so that the participant's screen never waits for the disk; a trial still on screen is
flagged once it is stored).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from rbdm_gui.screens.monitor_view import MonitorPanel
from rbdm_gui.screens.workers import run_task
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.monitor_model import MONITOR_RATE_HZ, MonitorModel, attach_monitor
from rbdm_gui.workflows.monitor_table import RunningTable, TableRequest, TableRunner
from tracking.clock import now_ms
from tracking.protocol import TIMED_PHASES, PhaseOnset
from tracking.recording import TrialQuality
from tracking.study import session_stimulus_rect

__all__ = ["SessionMonitor"]

_REASON = "marked bad by the experimenter"
#: The Compare screen's default Trainer, where the checkout has one.
_DEFAULT = DEFAULT_TRAINER if DEFAULT_TRAINER.is_file() else None


class SessionMonitor(QObject):
    """Feeds a :class:`MonitorPanel` from the session a :class:`~rbdm_gui.screens.app.SessionRun` records.

    Parameters
    ----------
    panel : MonitorPanel
        Where the monitor is drawn.
    trainer_path : Path or None
        The Trainer of the running Table 1 (the Compare screen's default when it exists); None compares
        the annotators only.
    in_process : bool
        Compute Table 1 in a worker process (default) or on a thread (tests).
    rate_hz : float
        Redraws per second.
    """

    def __init__(
        self,
        panel: MonitorPanel,
        *,
        trainer_path: Path | None = _DEFAULT,
        in_process: bool = True,
        rate_hz: float = MONITOR_RATE_HZ,
    ) -> None:
        super().__init__(panel)
        self.panel = panel
        self.trainer_path = trainer_path
        self.model: MonitorModel | None = None
        self.run: Any = None
        self._runner = TableRunner(in_process=in_process)
        self._table: RunningTable | None = None
        self._detach: Callable[[], None] | None = None
        self._pending_flags: set[int] = set()
        self._interval_s = 1.0 / rate_hz
        self._last_tick_s = -math.inf
        self._last_frame_s = -math.inf
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, round(1000.0 / rate_hz)))
        self.timer.timeout.connect(self._on_timer)
        panel.pause_requested.connect(self.pause)
        panel.resume_requested.connect(self.resume)
        panel.recalibrate_requested.connect(self.recalibrate)
        panel.mark_bad_requested.connect(self.mark_bad)

    # --- attaching ----------------------------------------------------------------------------------

    def attach(self, run: Any) -> bool:
        """Watch ``run``, a recording :class:`~rbdm_gui.screens.app.SessionRun`; False when it does not
        record yet."""
        if run is self.run and self._detach is not None:
            return True
        if run.session is None or run.recorder is None or run.driver is None or run.store is None:
            return False
        self.detach()
        driver, protocol = run.driver, run.session.protocol
        model = self.model = MonitorModel(
            protocol.stimulus_ids,
            done=run.start_position,
            nominal_rate_hz=driver.nominal_rate_hz,
            driver_status=lambda: (driver.state, getattr(driver, "calibrated", None)),
        )
        model.trial_added.subscribe(self._on_trial)
        self._detach = attach_monitor(
            model,
            protocol=protocol,
            add_sample_tap=run.recorder.add_tap,
            add_event_listener=driver.add_event_listener,
            committed=run.session.committed,
            fixation_tap=getattr(run, "fixation_tap", None),
        )
        frames = getattr(run.labeling_view, "frames", None)
        if frames is not None:
            detach_model, stop_frames = self._detach, frames.subscribe(self._on_frame)
            stop_phases = protocol.phase_started.subscribe(self._on_phase)

            def detach_all() -> None:
                stop_frames()
                stop_phases()
                detach_model()
                self._runner.hold(False)

            self._detach = detach_all
        self.run = run
        self._pending_flags = set()
        session = run.store.session(run.session_id)
        self.panel.show_session(
            geometry=session.geometry, stimulus_rect=session_stimulus_rect(session), images=run.images
        )
        request = TableRequest(
            study_path=str(run.store.path),
            participant=run.settings.participant,
            stimulus_set=run.settings.stimulus_set_key(),
            trainer_path=None if self.trainer_path is None else str(self.trainer_path),
            stimulus_ids=tuple(protocol.stimulus_ids),
        )
        if self._table is not None:
            self._table.close()
        self._table = RunningTable(model, self._runner, request)
        self._runner.start()
        if run.start_position > 0:  # a resumed session: its stored trials count from the start
            self._table.refresh()
        run.ended.connect(self._ended)
        run.failed.connect(self._ended)
        self.timer.start()
        self.tick()
        return True

    def detach(self) -> None:
        """Stop listening to the session (the panel keeps what it shows; marking a trial bad still
        refreshes its Table 1)."""
        if self._detach is not None:
            self._detach()
            self._detach = None

    def close(self) -> None:
        """Detach, stop the timer and the Table 1 worker."""
        self.detach()
        self.timer.stop()
        self._runner.close()

    def _ended(self, *_: object) -> None:
        self.detach()
        if self.model is not None:
            self.tick()
        if not self._runner.busy:
            self.timer.stop()

    # --- drawing ------------------------------------------------------------------------------------

    def _on_frame(self, t_ms: float) -> None:
        """The participant's frame is on screen: redraw now if it is time, in the gap before the next."""
        now = time.perf_counter()
        self._last_frame_s = now
        if now - self._last_tick_s >= self._interval_s * 0.9:
            self.tick()

    def _on_phase(self, onset: PhaseOnset) -> None:
        """Table 1 waits while the participant's screen shows a timed phase (blank, cross, blank)."""
        self._runner.hold(onset.phase in TIMED_PHASES)

    def _on_timer(self) -> None:
        if time.perf_counter() - self._last_frame_s > 3 * self._interval_s:  # no frames drive the redraws
            self.tick()

    def tick(self) -> None:
        """Take in what arrived, poll the Table 1 worker, redraw."""
        model = self.model
        if model is None:
            return
        self._last_tick_s = time.perf_counter()
        if self._table is not None:
            self._table.poll()
        run = self.run
        model.recalibration_pending = bool(getattr(run, "recalibration_pending", False))
        self.panel.show_snapshot(model.update(now_ms()))
        if self._detach is None and not self._runner.busy:
            self.timer.stop()

    def _on_trial(self, quality: TrialQuality) -> None:
        if quality.position in self._pending_flags:
            self._pending_flags.discard(quality.position)
            self._flag(quality.position)

    # --- controls -----------------------------------------------------------------------------------

    def pause(self) -> None:
        """Pause the labeling screen (as Esc does)."""
        view = getattr(self.run, "labeling_view", None)
        if view is not None:
            view.pause()

    def resume(self) -> None:
        """Resume the labeling screen."""
        view = getattr(self.run, "labeling_view", None)
        if view is not None:
            view.resume()

    def recalibrate(self) -> None:
        """Run the calibration before the next trial."""
        if self.run is not None and self._detach is not None:
            self.run.recalibrate_before_next_trial()

    def mark_bad(self, position: int) -> None:
        """Flag the trial at ``position`` as bad in the study file (at once, or once it is stored)."""
        model = self.model
        if model is None or self.run is None:
            return
        if any(s.position == position for s in model.trials):
            self._flag(position)
        else:
            self._pending_flags.add(position)
            model.set_flag(position, "to be flagged once stored", in_store=False)

    def _flag(self, position: int) -> None:
        store, session_id, model = self.run.store, self.run.session_id, self.model

        def write(progress: object, cancelled: object) -> int:
            store.flag_trial(session_id, position, reason=_REASON)
            return position

        def done(flagged: int) -> None:
            if model is not None:
                model.set_flag(flagged, _REASON)  # Table 1 is computed again at once, without it
                self.timer.start()  # to poll for that table, also after the session's end

        def failed(error: BaseException) -> None:
            if model is not None:
                model.set_flag(position, f"not flagged: {error}", in_store=False)

        run_task(write, on_result=done, on_error=failed)
