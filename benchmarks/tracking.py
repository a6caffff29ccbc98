"""Recording pipeline under load: 1,200 Hz driver → online I-DT and I-VT → session store.

A simulated scan path (fixations, saccades, noise, blinks) is played at 1,200 Hz by the replay
driver for ``--duration-s`` seconds (real time at ``--speed 1``). Every sample goes to a
:class:`~tracking.store.SampleWriter` and to both online detectors on the driver's thread, while
the main thread commits a trial with its fixations every ``--trial-s`` seconds. Reported:

* samples delivered by the driver versus samples in the store (dropped: goal 0);
* each detector's latency after a fixation ends: from its last sample's arrival to the moment
  it is emitted. A detector learns that a fixation ended only from later samples: with the
  default Savitzky–Golay smoothing (issue 16) about half the filter's window (10 ms) later, the
  raw algorithms one sample (0.83 ms at 1,200 Hz) later, plus the driver's pacing jitter; the
  time spent in the emitting ``feed`` call itself is shown separately;
* per-sample ``feed`` cost against the offline function on the same samples (baseline);
* trial commit times (``synchronous=FULL``, one transaction each) while samples stream.

Run: ``python -m benchmarks.tracking [--duration-s 60] [--speed 1] [--trial-s 5]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from benchmarks._report import best_of, print_table
from tracking.clock import now_ms
from tracking.drivers.base import streaming
from tracking.drivers.replay import ReplayDriver
from tracking.fixations import IDTDetector, IVTDetector, idt, ivt
from tracking.records import Fixation, GazeSample, PhaseOnsets, Trial
from tracking.store import SessionStore

RATE_HZ = 1200.0
GEOMETRY = ScreenGeometry()  # RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm


def simulated_scan_path(
    duration_s: float, *, rng: np.random.Generator, noise_deg: float = 0.005
) -> list[GazeSample]:
    """Fixations of 150–450 ms on the central stimulus, 30 ms saccades, a 120 ms blink every ~4 s."""
    px_per_deg = GEOMETRY.distance_cm * math.tan(math.radians(1.0)) * GEOMETRY.px_per_cm
    rect = GEOMETRY.stimulus_rect()
    n = int(duration_s * RATE_HZ)
    t_ms = np.arange(n) * (1000.0 / RATE_HZ)
    xy = np.empty((n, 2))
    start, here = 0, np.array([rect.x_px + rect.width_px / 2, rect.y_px + rect.height_px / 2])
    while start < n:
        there = rng.uniform([rect.x_px, rect.y_px], [rect.x_px + rect.width_px, rect.y_px + rect.height_px])
        n_saccade, n_fixation = int(0.030 * RATE_HZ), int(rng.uniform(0.150, 0.450) * RATE_HZ)
        steps = np.linspace(0.0, 1.0, n_saccade, endpoint=False)[:, None]
        segment = np.vstack([here + steps * (there - here), np.tile(there, (n_fixation, 1))])
        xy[start : start + len(segment)] = segment[: n - start]
        start, here = start + len(segment), there
    xy += rng.normal(0.0, noise_deg * px_per_deg, xy.shape)
    valid = np.ones(n, dtype=bool)
    for blink_ms in np.arange(2000.0, t_ms[-1], 4000.0):
        valid[(t_ms >= blink_ms) & (t_ms < blink_ms + 120.0)] = False
    return [
        GazeSample(t, x, y, ok) if ok else GazeSample(t, math.nan, math.nan, False)
        for t, (x, y), ok in zip(t_ms.tolist(), xy.tolist(), valid.tolist(), strict=True)
    ]


@dataclass
class _DetectorLog:
    """What one online detector did during the run."""

    detector: IDTDetector | IVTDetector
    fixations: list[Fixation] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    emit_call_us: list[float] = field(default_factory=list)
    feed_ns: int = 0

    def feed(self, sample: GazeSample, arrivals: dict[float, float]) -> None:
        """Feed one sample; ``arrivals`` maps the time stamps of the samples so far to their arrival times."""
        start = time.perf_counter_ns()
        ended = self.detector.feed(sample)
        spent = time.perf_counter_ns() - start
        self.feed_ns += spent
        if ended:
            emitted_ms = now_ms()
            # From the arrival of the fixation's last sample to its emission.
            self.latency_ms += [emitted_ms - arrivals[f.offset_ms] for f in ended]
            self.emit_call_us.append(spent / 1000.0)
            self.fixations += ended


@dataclass
class _Pipeline:
    """The driver's callback: store the sample, feed both detectors."""

    add: Callable[[GazeSample], None]
    logs: dict[str, _DetectorLog]
    delivered: list[GazeSample] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    arrivals: dict[float, float] = field(default_factory=dict)
    add_ns: int = 0

    def __call__(self, sample: GazeSample) -> None:
        arrival_ms = now_ms()
        self.lateness_ms.append(arrival_ms - sample.t_ms)
        start = time.perf_counter_ns()
        self.add(sample)
        self.add_ns += time.perf_counter_ns() - start
        self.delivered.append(sample)
        self.arrivals[sample.t_ms] = arrival_ms
        for log in self.logs.values():
            log.feed(sample, self.arrivals)


def _record_trials(
    store: SessionStore, session_id: int, pipeline: _Pipeline, driver: ReplayDriver, *, wall_s: float
) -> list[float]:
    """While the driver plays, commit a trial with its I-DT fixations every ``wall_s``; commit times in ms.

    Trial phases are taken from the delivered samples' time stamps, which run ahead of the
    clock when the replay is faster than real time.
    """
    commit_ms: list[float] = []
    order = store.session(session_id).stimulus_order
    position, start_ms = 0, now_ms()
    while not driver.wait_finished(timeout_s=wall_s) and position < len(order):
        end_ms = pipeline.delivered[-1].t_ms
        phases = PhaseOnsets(start_ms, start_ms + 500.0, start_ms + 700.0, start_ms + 1200.0, end_ms)
        fixations = [f for f in list(pipeline.logs["I-DT"].fixations) if start_ms <= f.onset_ms < end_ms]
        trial = Trial(position, order[position], phases, "neutral", "keyboard", response_time_ms=1.0)
        tick = time.perf_counter()
        store.record_trial(session_id, trial, fixations)
        commit_ms.append((time.perf_counter() - tick) * 1000.0)
        position, start_ms = position + 1, end_ms
    return commit_ms


def run(duration_s: float, *, speed: float, trial_s: float, folder: Path) -> None:
    samples = simulated_scan_path(duration_s, rng=np.random.default_rng(20200101))
    logs = {"I-DT": _DetectorLog(IDTDetector(GEOMETRY)), "I-VT": _DetectorLog(IVTDetector(GEOMETRY))}
    driver = ReplayDriver(samples, speed=speed)
    driver.connect()
    with SessionStore(folder / "benchmark.db") as store:
        n_trials = int(duration_s / trial_s) + 2
        session_id = store.create_session(
            store.create_participant("BENCH01"),
            settings={"rate_hz": RATE_HZ, "speed": speed},
            geometry=GEOMETRY,
            tracker="replay",
            recogniser="none",
            stimulus_order=[f"stimulus-{k:03d}" for k in range(n_trials)],
        )
        wall = time.perf_counter()
        with store.sample_writer(session_id) as writer:
            pipeline = _Pipeline(writer.add, logs)
            with streaming(driver, pipeline):
                commit_ms = _record_trials(store, session_id, pipeline, driver, wall_s=trial_s / speed)
                driver.wait_finished(timeout_s=duration_s / speed + 60.0)
            for log in logs.values():
                log.fixations += log.detector.flush()
        wall = time.perf_counter() - wall
        stored = len(store.samples(session_id))
        dropped_by_writer = writer.dropped
    driver.close()
    _report_samples(len(samples), pipeline, stored, dropped_by_writer, wall, speed)
    _report_detectors(pipeline)
    _report_trials(commit_ms)


def _report_samples(
    n_generated: int, pipeline: _Pipeline, stored: int, dropped_by_writer: int, wall_s: float, speed: float
) -> None:
    delivered = len(pipeline.delivered)
    add_us = pipeline.add_ns / 1e3 / delivered
    print_table(
        f"Samples: {n_generated / RATE_HZ:.0f} s at {RATE_HZ:.0f} Hz, speed ×{speed:g}, wall {wall_s:.1f} s",
        ["generated", "delivered", "stored", "dropped", "writer.dropped", "add() µs/sample"],
        [[n_generated, delivered, stored, delivered - stored, dropped_by_writer, add_us]],
    )
    if speed == 1.0:
        late = np.array(pipeline.lateness_ms)
        print_table(
            "Driver pacing: sample delivered − its time stamp, ms (the replay driver's own jitter)",
            ["median", "p95", "max"],
            [[float(np.median(late)), float(np.percentile(late, 95)), float(late.max())]],
        )


def _report_detectors(pipeline: _Pipeline) -> None:
    t_ms, xy, valid = _arrays(pipeline.delivered)
    rows = []
    for name, log in pipeline.logs.items():
        offline = _offline(name, t_ms, xy, valid)
        baseline_us = best_of(functools.partial(_offline, name, t_ms, xy, valid), repeat=3) / len(t_ms) * 1e6
        online_us = log.feed_ns / 1e3 / len(t_ms)
        lat = np.array(log.latency_ms)
        rows.append([
            name, len(log.fixations), "yes" if log.fixations == offline else "NO",
            float(np.median(lat)), float(np.percentile(lat, 95)), float(lat.max()),
            float(np.median(log.emit_call_us)), online_us, baseline_us, f"{online_us / baseline_us:.2f}×",
        ])  # fmt: skip
    print_table(
        "Online detectors (latency: arrival of a fixation's last sample → its emission, ms; costs µs)",
        ["detector", "fixations", "= offline", "lat. median", "lat. p95", "lat. max", "emit call",
         "feed/sample", "offline/sample", "ratio"],
        rows,
    )  # fmt: skip


def _report_trials(commit_ms: list[float]) -> None:
    print_table(
        "Trial commits while samples stream (one transaction each, synchronous=FULL), ms",
        ["trials", "median", "max"],
        [[len(commit_ms), statistics.median(commit_ms), max(commit_ms)]] if commit_ms else [[0, "-", "-"]],
    )


def _arrays(samples: list[GazeSample]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    t_ms = np.array([s.t_ms for s in samples])
    xy = np.array([(s.x_screen_px, s.y_screen_px) for s in samples])
    valid = np.array([s.valid for s in samples])
    return t_ms, xy, valid


def _offline(
    name: str, t_ms: NDArray[np.float64], xy: NDArray[np.float64], valid: NDArray[np.bool_]
) -> list[Fixation]:
    detect = idt if name == "I-DT" else ivt
    return detect(t_ms, xy, valid, geometry=GEOMETRY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=60.0, help="length of the simulated recording")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (1 = real time)")
    parser.add_argument("--trial-s", type=float, default=5.0, help="recording time per trial")
    parser.add_argument("--store", type=Path, default=None, help="folder for the store (default: temporary)")
    args = parser.parse_args()
    if args.store is not None:
        args.store.mkdir(parents=True, exist_ok=True)
        run(args.duration_s, speed=args.speed, trial_s=args.trial_s, folder=args.store)
        return
    with tempfile.TemporaryDirectory() as folder:
        run(args.duration_s, speed=args.speed, trial_s=args.trial_s, folder=Path(folder))


if __name__ == "__main__":
    main()
