"""Spoken labels on espeak-ng voices: named right, wrong or rejected, through the app's path and from files.

Each label is spoken by espeak-ng voices at about 130 and 170 words/min, resampled to 16 kHz and put
under a seeded room-noise floor (σ = 30 LSB ≈ −61 dBFS, as in the tests). Three ways in:

* ``app``: 500 ms of room before and after the word, streamed in 30-ms blocks through the recogniser's
  ``start_utterance`` / ``accept`` / ``finish`` (the path of the microphone in the app);
* ``file``: the word at the very first sample of a WAV file (no lead-in), 500 ms of room after it,
  given to the file API (``decode`` of the whole file for the baseline, as issue 17 measured it);
* ``file+lead``: the app's audio (500 ms lead-in) as a WAV file, through the file API;
* ``espeak file``: espeak-ng's own WAV file (22,050 Hz, digital silence around the word, which starts
  within 40 ms) through the file API, as a new user would try it.

An utterance counts as *right* when every label heard is the spoken one, *wrong* when any other label
is heard, else *rejected* (the safe failure: the annotator presses the key). Also reported: how many
non-label words and noise bursts (cough, click, breath, knock, scrape) are rejected.

Voices are split in two sets that share no espeak-ng voice: ``tuning`` (every option of the recogniser
was chosen on it) and ``held-out`` (only measured; the README's table). ``--compare`` prints one line
per candidate recogniser (:data:`CANDIDATES`: issue 17's recogniser as the baseline, the voice-activity
detectors, the decoder front end, the pronunciation variants, ...) on the chosen set, with its app-path
right-rate against the baseline of the same run; without it, the default recogniser's tables.

Run: ``python -m benchmarks.speech [--set held-out|tuning] [--candidate NAME] [--compare]``.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analysis.labels import LABELS
from benchmarks._report import print_table
from tests.tracking.speech._espeak import (
    HELD_OUT,
    TUNING,
    Voice,
    blocks,
    clean_word,
    espeak_wav,
    with_noise_floor,
    write_wav,
)
from tracking.speech.audio import read_wav, resample_pcm16
from tracking.speech.base import Recognition, SpeechRecogniser, recognise_blocks
from tracking.speech.endpointing import Endpointing
from tracking.speech.recognisers import build_recogniser, recognise_file
from tracking.speech.sphinx import BACKGROUND_WORDS, PocketsphinxRecogniser

RATE_HZ = 16_000
SPEEDS_WPM = (130, 170)
OTHER_WORDS = (
    "banana table computer window paper sandwich potato morning elephant garden music coffee umbrella "
    "kitchen pencil doctor yellow bicycle mountain nervous tired bored confused excited"
).split()


VOICE_SETS = {"held-out": HELD_OUT, "tuning": TUNING}

WAYS = ("app", "file", "file+lead", "espeak file")

Outcome = str  # "right", "wrong" or "rejected"
FileApi = Callable[[SpeechRecogniser, Path], list[Recognition]]


def _decode_whole_file(recogniser: SpeechRecogniser, path: Path) -> list[Recognition]:
    pcm, rate_hz = read_wav(path)
    assert isinstance(recogniser, PocketsphinxRecogniser)
    return [recogniser.decode(resample_pcm16(pcm, from_rate_hz=rate_hz, to_rate_hz=RATE_HZ))]


def _recognise_file(recogniser: SpeechRecogniser, path: Path) -> list[Recognition]:
    return recognise_file(path, recogniser=recogniser)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A recogniser to measure: how to build it and how it reads a file."""

    build: Callable[[], SpeechRecogniser]
    read_file: FileApi


ISSUE_17_VARIANTS = {
    "anger": ("AE NG G AH",),
    "fear": ("F IH AH", "F IY AH"),
    "contempt": ("K AH N T EH M T",),
    "neutral": ("N Y UW T R AH L",),
    "disgust": ("D IH Z G AH S T",),
}
"""The pronunciation variants of the recogniser issue 17 measured."""

ENERGY = Endpointing(detector="energy")
WIDE = {"preroll_ms": 250.0}  # issue 17's endpointer kept 250 ms before the word; the default keeps 50
TRIMMED = {"because", "being", "been", "same", "ago", "dunno", "got", "the", "year"}


def _candidate(read_file: FileApi = _recognise_file, **options: object) -> Candidate:
    endpointing = options.pop("endpointing", None)
    assert endpointing is None or isinstance(endpointing, Endpointing)
    return Candidate(functools.partial(build_recogniser, endpointing=endpointing, options=options), read_file)


ISSUE_17 = {
    "pronunciation_variants": ISSUE_17_VARIANTS,
    "noise_floor_lsb": 0.0,
    "label_min_confidence": {},
    "endpointing": Endpointing(**WIDE),
}
"""The options of the recogniser issue 17 measured (its endpointer was the energy one)."""

CANDIDATES: dict[str, Candidate] = {
    # issue 17's recogniser, files given to decode() whole: the baseline of every ratio
    "baseline": _candidate(_decode_whole_file, **{**ISSUE_17, "endpointing": Endpointing("energy", **WIDE)}),
    # voice-activity detectors in front of the same decoder; files through recognise_file
    "energy": _candidate(**{**ISSUE_17, "endpointing": Endpointing("energy", **WIDE)}),
    **{
        f"webrtc{m}": _candidate(**{**ISSUE_17, "endpointing": Endpointing(webrtc_mode=m, **WIDE)})
        for m in (1, 2, 3)
    },
    # a noise floor under digital silence before decoding
    "noise10": _candidate(**{**ISSUE_17, "noise_floor_lsb": 10.0}),
    "noise30": _candidate(**{**ISSUE_17, "noise_floor_lsb": 30.0}),
    # accent variants of the label words, without the per-label threshold ("default" has both)
    "variants": _candidate(label_min_confidence={}, endpointing=Endpointing(**WIDE)),
    "variants-bw1e-22": _candidate(
        label_min_confidence={}, background_weight=1e-22, endpointing=Endpointing(**WIDE)
    ),
    # background words that beat labels on the tuning voices taken out (others then win; rejected)
    "trim-background": _candidate(
        min_confidence=0.3,
        background_words=[w for w in BACKGROUND_WORDS if w not in TRIMMED],
        endpointing=Endpointing(**WIDE),
    ),
    # the default with the energy endpointer instead of WebRTC's detector
    "default-energy": _candidate(endpointing=ENERGY),
    # how much room the endpointer keeps before the word (the default: 50 ms)
    "preroll250": _candidate(endpointing=Endpointing(preroll_ms=250.0)),
    "preroll0": _candidate(endpointing=Endpointing(preroll_ms=0.0)),
    "default": _candidate(),
}


def outcome(recognitions: Iterable[Recognition], label: str | None) -> Outcome:
    """``right`` when the labels heard are just ``label``, ``wrong`` if another is, else ``rejected``."""
    heard = {r.label for r in recognitions if r.label is not None}
    if not heard:
        return "rejected"
    return "right" if heard == {label} else "wrong"


@dataclass(frozen=True, slots=True)
class Trial:
    """One utterance: who said what, how fast, and which way it reached the recogniser."""

    voice: Voice
    rate_wpm: int
    word: str
    label: str | None
    way: str


def _room(pcm: NDArray[np.int16], *, lead: bool, seed: int) -> NDArray[np.int16]:
    return with_noise_floor(pcm, rate_hz=RATE_HZ, seed=seed, lead_s=0.5 if lead else 0.0, tail_s=0.5)


def run_trial(
    trial: Trial, pcm: NDArray[np.int16], recogniser: SpeechRecogniser, read_file: FileApi, folder: Path
) -> Outcome:
    """Feed ``pcm`` (clean word) the trial's way and score what came back."""
    seed = zlib.crc32(f"{trial.voice.name} {trial.rate_wpm} {trial.word}".encode())
    if trial.way == "app":
        heard = recognise_blocks(recogniser, blocks(_room(pcm, lead=True, seed=seed)))
    elif trial.way == "espeak file":
        heard = read_file(
            recogniser,
            espeak_wav(
                trial.word, folder, voice=trial.voice.name, rate_wpm=trial.rate_wpm, pitch=trial.voice.pitch
            ),
        )
    else:
        path = write_wav(
            folder / "trial.wav", _room(pcm, lead=trial.way == "file+lead", seed=seed), rate_hz=RATE_HZ
        )
        heard = read_file(recogniser, path)
    return outcome(heard, trial.label)


def noise_bursts(rng: np.random.Generator) -> dict[str, NDArray[np.int16]]:
    """Non-speech sounds a labelling room makes, at 16 kHz (no noise floor yet)."""
    n = lambda ms: round(ms * RATE_HZ / 1000)  # noqa: E731
    t = lambda ms: np.arange(n(ms)) / RATE_HZ  # noqa: E731
    white = lambda ms: rng.normal(0.0, 1.0, n(ms))  # noqa: E731
    decay = lambda ms, tau_s: np.exp(-t(ms) / tau_s)  # noqa: E731
    sounds = {
        "cough": np.convolve(white(250), np.ones(8) / 8, "same") * decay(250, 0.08) * 6000,
        "click": np.concatenate([white(4) * 12000, np.zeros(n(100))]),
        "breath": np.convolve(white(500), np.ones(30) / 30, "same") * np.hanning(n(500)) * 4000,
        "knock": np.sin(2 * np.pi * 180 * t(120)) * decay(120, 0.03) * 10000,
        "scrape": np.sin(2 * np.pi * np.cumsum(np.linspace(300, 900, n(400))) / RATE_HZ) * 3000,
        "hum": np.sin(2 * np.pi * 100 * t(600)) * np.hanning(n(600)) * 2500,
    }
    return {k: np.clip(np.rint(v), -32768, 32767).astype(np.int16) for k, v in sounds.items()}


@dataclass
class Results:
    """Outcomes per trial, and rejections of other words and of noise."""

    labels: dict[Trial, Outcome]
    others_rejected: Counter[str]
    others_total: Counter[str]


def measure(candidate: Candidate, voices: Sequence[Voice], folder: Path, *, others: bool = True) -> Results:
    """Run every label (and, with ``others``, every other word and burst) through ``candidate``."""
    recogniser = candidate.build()
    labels: dict[Trial, Outcome] = {}
    for voice in voices:
        for rate in SPEEDS_WPM:
            for label in LABELS:
                pcm = clean_word(label, folder, voice=voice.name, rate_wpm=rate, pitch=voice.pitch)
                for way in WAYS:
                    trial = Trial(voice, rate, label, label, way)
                    labels[trial] = run_trial(trial, pcm, recogniser, candidate.read_file, folder)
    rejected, total = Counter[str](), Counter[str]()
    if others:
        for voice_index, voice in enumerate(voices):
            rate = SPEEDS_WPM[voice_index % 2]
            for word in OTHER_WORDS:
                pcm = clean_word(word, folder, voice=voice.name, rate_wpm=rate, pitch=voice.pitch)
                for way in ("app", "file"):
                    kind = f"other words, {way}"
                    total[kind] += 1
                    rejected[kind] += (
                        run_trial(
                            Trial(voice, rate, word, None, way), pcm, recogniser, candidate.read_file, folder
                        )
                        == "rejected"
                    )
        for seed in range(3):
            for name, pcm in noise_bursts(np.random.default_rng(seed)).items():
                for way in ("app", "file"):
                    kind = f"noise bursts, {way}"
                    total[kind] += 1
                    trial = Trial(Voice(f"noise{seed}", "", 0), 0, name, None, way)
                    rejected[kind] += (
                        run_trial(trial, pcm, recogniser, candidate.read_file, folder) == "rejected"
                    )
    return Results(labels, rejected, total)


def _rwx(outcomes: Iterable[Outcome]) -> str:
    c = Counter(outcomes)
    return f"{c['right']}/{c['wrong']}/{c['rejected']}"


def _pct(outcomes: Sequence[Outcome]) -> float:
    return 100.0 * sum(o == "right" for o in outcomes) / max(len(outcomes), 1)


def summary_rows(name: str, results: Results, baseline: Results | None) -> list[list[object]]:
    """One row: right/wrong/rejected per way, % right (and its ratio to the baseline), rejections."""
    row: list[object] = [name]
    for way in WAYS:
        got = [o for t, o in results.labels.items() if t.way == way]
        row += [_rwx(got), _pct(got)]
    if baseline is not None:
        base = [o for t, o in baseline.labels.items() if t.way == "app"]
        row.append(
            f"{_pct([o for t, o in results.labels.items() if t.way == 'app']) / max(_pct(base), 1e-9):.2f}×"
        )
    for kind in sorted(results.others_total):
        row.append(f"{results.others_rejected[kind]}/{results.others_total[kind]}")
    return [row]


def print_details(results: Results, voices: Sequence[Voice], title: str) -> None:
    """Tables per voice and speed, and per label: right/wrong/rejected for each way."""
    rows: list[list[object]] = []
    for voice in voices:
        for rate in SPEEDS_WPM:
            got = {
                w: [
                    o
                    for t, o in results.labels.items()
                    if t.voice == voice and t.rate_wpm == rate and t.way == w
                ]
                for w in WAYS
            }
            rows.append([voice.name, voice.accent, rate, voice.pitch, *(_rwx(got[w]) for w in WAYS)])
    print_table(
        f"{title}: per voice and speed (right/wrong/rejected of 8 labels)",
        ["voice", "accent", "wpm", "pitch", *WAYS],
        rows,
    )
    rows = []
    for label in LABELS:
        got = {w: [o for t, o in results.labels.items() if t.label == label and t.way == w] for w in WAYS}
        rows.append([label, *(_rwx(got[w]) for w in WAYS)])
    n = len(voices) * len(SPEEDS_WPM)
    print_table(f"{title}: per label (right/wrong/rejected of {n})", ["label", *WAYS], rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(VOICE_SETS), default="held-out")
    parser.add_argument(
        "--candidate",
        choices=sorted(CANDIDATES),
        default="default" if "default" in CANDIDATES else "baseline",
    )
    parser.add_argument(
        "--compare", nargs="*", metavar="NAME", help="candidates to compare (all if none named)"
    )
    parser.add_argument("--no-others", action="store_true", help="labels only (faster tuning loops)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "rbdm-espeak")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    voices = VOICE_SETS[args.set]
    run = functools.partial(measure, voices=voices, folder=args.cache, others=not args.no_others)
    baseline = run(CANDIDATES["baseline"])
    if args.compare is not None:
        names = args.compare or list(CANDIDATES)
        rows = [
            r
            for name in names
            for r in summary_rows(name, baseline if name == "baseline" else run(CANDIDATES[name]), baseline)
        ]
        kinds = sorted(baseline.others_total)
        print_table(
            f"{args.set} voices ({len(voices)}), {len(voices) * len(SPEEDS_WPM) * len(LABELS)} labels "
            "per way: right/wrong/rejected, % right; rejected of other words and noise",
            ["candidate", *(c for w in WAYS for c in (w, "%")), "app vs baseline", *kinds],
            rows,
        )
        return
    results = baseline if args.candidate == "baseline" else run(CANDIDATES[args.candidate])
    kinds = sorted(results.others_total)
    print_table(
        f"{args.set} voices: candidate {args.candidate!r} against the baseline",
        ["candidate", *(c for w in WAYS for c in (w, "%")), "app vs baseline", *kinds],
        [*summary_rows("baseline", baseline, baseline), *summary_rows(args.candidate, results, baseline)],
    )
    print_details(results, voices, f"{args.set} voices, {args.candidate}")


if __name__ == "__main__":
    main()
