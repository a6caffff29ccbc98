"""Spoken labels with PocketSphinx (the default recogniser; its English model ships with the package).

The decoder searches a finite-state grammar with two branches: one of the label words (the eight
labels and their :data:`~tracking.speech.base.SYNONYMS`), or something else — one word of a *background
vocabulary* of about 200 everyday words, or nothing but silence and noise. A closed grammar of only the
label words answers every utterance with some label; the background branch gives other words
("banana", "next", "okay") a better path than any label, and the utterance comes back unrecognised. A
label that wins is accepted only when its acoustic score per 10-ms frame, relative to the best-scoring
model state in each frame, is high enough (:func:`acoustic_confidence` ≥ ``min_confidence``).

Audio without voiced frames (breath, a fan, a chair) is unrecognised without decoding. A seeded noise
floor of :data:`DEFAULT_NOISE_FLOOR_LSB` is added before decoding, so digital silence (espeak-ng files,
edited recordings) decodes like a quiet room. Pronunciation variants (:data:`PRONUNCIATION_VARIANTS`:
British, Scottish, Caribbean and New York vowels, non-rhotic "anger" and "fear", "contempt" without /p/)
are added to the US dictionary, and "disgust" has its own, lower confidence threshold
(:data:`LABEL_MIN_CONFIDENCE`).

Measured with ``python -m benchmarks.speech`` on espeak-ng voices under a −61 dBFS room floor, 7 voices
held out from tuning × 130 and 170 words/min × 8 labels = 112 (right / wrong / rejected): through the
app's path (30-ms blocks) issue 17's recogniser 84 / 0 / 28, this one 108 / 0 / 4; from files without a
lead-in 86 / 0 / 26 and 108 / 0 / 4; espeak-ng's own files 37 / 1 / 74 and 108 / 0 / 4. Other words
rejected through the app's path: 140 of 168 with both; noise bursts: all 18. Rejecting is the safe
failure: a rejected label is shown as unrecognised, and the annotator repeats it or presses its key —
a wrong label would go unnoticed. Tried on the tuning voices and not kept: per-word weights in the
grammar (no change up to a factor of 10⁵), fewer background words (more other words taken for
labels), keyword-spotting mode (many wrong labels), a 1,000-word background vocabulary (fewer labels).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a microphone).
.. [2] Huggins-Daines et al. (2006), PocketSphinx: a free, real-time continuous speech recognition
   system for hand-held devices, ICASSP.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from analysis.labels import LABELS
from tracking._validation import check_fraction
from tracking.speech._checks import check_non_negative, check_synonyms, check_unit_interval
from tracking.speech.audio import check_pcm16, voiced_duration_ms
from tracking.speech.base import SYNONYMS, Recognition, match_label
from tracking.speech.endpointing import Endpointing, UtteranceListener
from tracking.speech.errors import RecogniserError

if TYPE_CHECKING:
    from pocketsphinx import Decoder

__all__ = [
    "BACKGROUND_WORDS",
    "DEFAULT_BACKGROUND_WEIGHT",
    "DEFAULT_NOISE_FLOOR_LSB",
    "FRAME_MS",
    "LABEL_MIN_CONFIDENCE",
    "PRONUNCIATION_VARIANTS",
    "SCORE_AT_HALF_CONFIDENCE",
    "PocketsphinxRecogniser",
    "Segment",
    "acoustic_confidence",
    "label_fsg_transitions",
    "recognition_from_segments",
]

FRAME_MS = 10.0
"""PocketSphinx's frame shift (100 frames per second)."""

DEFAULT_BACKGROUND_WEIGHT = 1e-20
"""Probability of entering the background branch; measured trade-off, see the module docstring."""

DEFAULT_NOISE_FLOOR_LSB = 10.0
"""σ of the seeded noise added before decoding, in LSB (≈ −70 dBFS): below any microphone's own floor,
enough that digital silence decodes like a quiet room (espeak-ng files: 25 of 80 tuning labels right
without it, 50 with it)."""

LABEL_MIN_CONFIDENCE: Mapping[str, float] = MappingProxyType({"disgust": 0.25})
"""Per-label confidence thresholds that differ from ``min_confidence``: "disgust" (two unstressed vowels
and the clusters /sɡ/, /st/, scored low per frame even when right: 0.26–0.44 on tuning voices)."""

SCORE_AT_HALF_CONFIDENCE = -5.5
"""Acoustic score per frame (natural log of PocketSphinx's segment score) that maps to confidence 0.5."""

PRONUNCIATION_VARIANTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "anger": ("AE NG G AH", "AA NG G AH", "AA NG G ER"),
        "fear": ("F IH AH", "F IY AH"),
        "contempt": ("K AH N T EH M T",),
        "neutral": ("N Y UW T R AH L",),
        "disgust": ("D IH Z G AH S T", "D IH S G UH S T", "D IH Z G UH S T"),
        "happy": ("HH AA P IY", "AA P IY", "HH AE P IH", "HH AA P IH"),
        "sad": ("S AA D", "S EH D", "S AH D", "S EH AH D"),
    }
)
"""Extra ARPAbet pronunciations added to CMUdict's US forms: non-rhotic "anger" and "fear", "contempt"
without /p/, British "neutral", and the open front /a/ of British, Scottish and Caribbean English
("sad" [sad], "happy" [hapi], "anger" [aŋɡə]; CMUdict has only /æ/), New York's [sɛəd], h-dropping, and
the [ʊ] of northern English "disgust"."""

BACKGROUND_WORDS: tuple[str, ...] = tuple(
    """
    a about after again ago all also always and another any are around as ask at away back bad be because
    been before being best better big but by call came come could day did do does done down each even
    every find first for from get give go going gone good got great had has have he her here him his how i
    if in into is it its just keep know last left like little long look made make many may me mean more
    most much must my never new next no not now of off oh ok okay old once one only or other our out
    over put really right said same saw say see seen she should show so some something still such sure
    take tell than thank thanks that the their them then there these they thing think this those three
    through time to too two up us use very want was way we well went were what when where which while who
    why will with work would year yes yet you your yeah yep nope um uh hmm er ah oops wait sorry
    repeat skip previous picture image face photo four five six seven eight nine ten zero second third
    wrong correct maybe dunno hello man woman boy girl child smile frown eyes mouth nose brow lips open
    closed small bottom red green blue black white grey dark light
    """.split()
)
"""Everyday words that compete with the labels; an utterance decoded as one of them is unrecognised."""

Segment = tuple[str, int, int, float]
"""One decoded word: (word, first frame, last frame inclusive, natural log of its acoustic score)."""

_ALTERNATE = re.compile(r"\(\d+\)$")


def label_fsg_transitions(
    words: Sequence[str],
    background: Sequence[str],
    *,
    background_weight: float,
) -> list[tuple[Any, ...]]:
    """Transitions of the label grammar: state 0 → one label word → final state 1, else something else.

    With a background vocabulary, the path may instead go through one background word (states 2, 3) or
    through nothing but fillers (silence, noise), each entered with ``background_weight``; either
    leaves the utterance unrecognised.

    Parameters
    ----------
    words : sequence of str
        Label words and synonyms; each gets probability ``1 / len(words)``.
    background : sequence of str
        Background vocabulary (may be empty: then the grammar is closed).
    background_weight : float
        Probability, in (0, 1), of the null transitions into the background branch (state 2) and
        straight to the end; each background word then has ``1 / len(background)``.

    Returns
    -------
    list of tuple
        ``(from, to, probability[, word])`` as ``pocketsphinx.Decoder.create_fsg`` takes them; start
        state 0, final state 1.
    """
    if not words:
        raise ValueError("words must hold at least one label word; got none.")
    transitions: list[tuple[Any, ...]] = [(0, 1, 1.0 / len(words), w) for w in words]
    if background:
        check_fraction(background_weight=background_weight)
        transitions.append((0, 1, float(background_weight)))
        transitions.append((0, 2, float(background_weight)))
        transitions += [(2, 3, 1.0 / len(background), w) for w in background]
        transitions.append((3, 1, 1.0))
    return transitions


def acoustic_confidence(
    ln_score: float, n_frames: int, *, score_at_half: float = SCORE_AT_HALF_CONFIDENCE
) -> float:
    """Confidence in [0, 1] from a word's acoustic score: a logistic function of its score per frame.

    Parameters
    ----------
    ln_score : float
        Natural log of the word's acoustic score (PocketSphinx normalises each frame by its best state,
        so a perfect match scores 0 and poorer matches lower); ``-inf`` gives 0.
    n_frames : int
        Frames the word spans (≥ 1).
    score_at_half : float
        Score per frame that maps to 0.5.

    Returns
    -------
    float
        ``1 / (1 + exp(-(ln_score / n_frames - score_at_half)))``.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1; got {n_frames!r}.")
    per_frame = ln_score / n_frames
    if math.isnan(per_frame):
        raise ValueError(f"ln_score must not be NaN; got {ln_score!r}.")
    z = per_frame - score_at_half
    if z < -700:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z)) if z < 700 else 1.0


def recognition_from_segments(
    segments: Iterable[Segment],
    *,
    duration_ms: float,
    min_confidence: float = 0.5,
    label_min_confidence: Mapping[str, float] = MappingProxyType({}),
    synonyms: Mapping[str, str] = SYNONYMS,
) -> Recognition:
    """Turn a decoder's word segmentation into a :class:`~tracking.speech.base.Recognition`; pure.

    Fillers (``<sil>``, ``<s>``, ``</s>``, ``[NOISE]``...) are dropped and alternate-pronunciation marks
    (``fear(2)``) removed. The label is set only when the words name exactly one label
    (:func:`~tracking.speech.base.match_label`) and the confidence reaches ``min_confidence``.

    Parameters
    ----------
    segments : iterable of (word, first_frame, last_frame, ln_score)
        The decoded words, 10-ms frames, last frame inclusive.
    duration_ms : float
        Length of the decoded audio; the time span of a result without words.
    min_confidence : float
        Confidence needed to accept a label ...
    label_min_confidence : mapping of str to float
        ... unless this gives the label its own threshold.
    synonyms : mapping
        Spoken word → label.

    Returns
    -------
    Recognition
        Times relative to the start of the decoded audio; ``label=None``, ``text=""`` and confidence 0
        when only fillers were heard.
    """
    words = [(_ALTERNATE.sub("", w), a, b, s) for w, a, b, s in segments if not w.startswith(("<", "[", "+"))]
    if not words:
        return Recognition(None, "", 0.0, 0.0, float(duration_ms))
    text = " ".join(w for w, *_ in words).lower()
    n_frames = sum(b - a + 1 for _, a, b, _ in words)
    confidence = acoustic_confidence(sum(s for *_, s in words), max(n_frames, 1))
    label = match_label(text, synonyms=synonyms)
    if label is not None and confidence < label_min_confidence.get(label, min_confidence):
        label = None
    start_ms, end_ms = words[0][1] * FRAME_MS, (words[-1][2] + 1) * FRAME_MS
    return Recognition(label, text, confidence, start_ms, max(end_ms, start_ms))


class PocketsphinxRecogniser:
    """Spoken-label recogniser on PocketSphinx's US English model, with rejection of other words.

    Parameters
    ----------
    synonyms : mapping of str to str
        Spoken word → label; every word must be in CMUdict (default
        :data:`~tracking.speech.base.SYNONYMS`).
    background_words : sequence of str
        Competing everyday words (default :data:`BACKGROUND_WORDS`; words missing from CMUdict or
        in ``synonyms`` are skipped). Empty: a closed grammar that never rejects a word.
    background_weight : float
        Probability of the background branch, in (0, 1) (default 1e-20; larger rejects more).
    min_confidence : float
        Confidence needed to accept a label, in [0, 1] (default 0.5).
    min_voiced_ms : float
        Utterances with less voiced audio (:func:`~tracking.speech.audio.voiced_duration_ms`) are noise
        and come back unrecognised without decoding (default 50 ms; 0 disables the check).
    pronunciation_variants : mapping of str to tuple of str
        Extra ARPAbet pronunciations per word (default :data:`PRONUNCIATION_VARIANTS`).
    noise_floor_lsb : float
        Standard deviation, in LSB of int16, of a seeded Gaussian noise added to each utterance before
        decoding (default :data:`DEFAULT_NOISE_FLOOR_LSB`), so that digital silence in a file (espeak-ng,
        edited recordings) looks like a quiet room; 0 decodes the audio as it is.
    label_min_confidence : mapping of str to float
        Confidence needed per label, where it differs from ``min_confidence`` (default
        :data:`LABEL_MIN_CONFIDENCE`): the per-word rejection thresholds.
    endpointing : Endpointing, optional
        Options of the utterance endpointer.

    Raises
    ------
    RecogniserError
        When pocketsphinx is missing or its decoder cannot be created, or a label word has no pronunciation.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """

    name = "pocketsphinx"
    sample_rate_hz = 16000

    def __init__(
        self,
        *,
        synonyms: Mapping[str, str] = SYNONYMS,
        background_words: Sequence[str] = BACKGROUND_WORDS,
        background_weight: float = DEFAULT_BACKGROUND_WEIGHT,
        min_confidence: float = 0.5,
        min_voiced_ms: float = 50.0,
        pronunciation_variants: Mapping[str, tuple[str, ...]] = PRONUNCIATION_VARIANTS,
        label_min_confidence: Mapping[str, float] = LABEL_MIN_CONFIDENCE,
        noise_floor_lsb: float = DEFAULT_NOISE_FLOOR_LSB,
        endpointing: Endpointing | None = None,
    ) -> None:
        self._synonyms = check_synonyms(synonyms)
        self._min_confidence = check_unit_interval(min_confidence=min_confidence)
        self._min_voiced_ms = check_non_negative(min_voiced_ms=min_voiced_ms)
        self._noise_floor_lsb = check_non_negative(noise_floor_lsb=noise_floor_lsb)
        self._label_min_confidence = _check_label_thresholds(label_min_confidence)
        self._decoder = _create_decoder()
        _add_variants(self._decoder, pronunciation_variants)
        words = list(self._synonyms)
        missing = [w for w in words if self._decoder.lookup_word(w) is None]
        if missing:
            raise RecogniserError(
                f"No pronunciation for {', '.join(missing)} in PocketSphinx's dictionary; give them one in "
                "pronunciation_variants, or use the vosk recogniser / keyboard labels (keys 1–8)."
            )
        background = [
            w
            for w in dict.fromkeys(background_words)
            if w not in self._synonyms and self._decoder.lookup_word(w)
        ]
        transitions = label_fsg_transitions(words, background, background_weight=background_weight)
        fsg = self._decoder.create_fsg("labels", 0, 1, transitions)
        self._decoder.add_fsg("labels", fsg)
        self._decoder.activate_search("labels")
        self._listener = UtteranceListener(
            self.decode, sample_rate_hz=self.sample_rate_hz, endpointing=endpointing
        )

    @property
    def max_block_ms(self) -> float:
        """Longest block :meth:`accept` takes (the endpointer's trailing silence)."""
        return self._listener.max_block_ms

    def decode(self, pcm: NDArray[np.int16]) -> Recognition:
        """Recognise one whole utterance (16 kHz mono int16, with some silence around the word).

        Returns
        -------
        Recognition
            Times relative to ``pcm[0]``; unrecognised with ``text=""`` for audio without voice.
        """
        samples = check_pcm16(pcm=pcm)
        duration_ms = 1000.0 * samples.size / self.sample_rate_hz
        voiced_ms = voiced_duration_ms(samples, sample_rate_hz=self.sample_rate_hz) if samples.size else 0.0
        if samples.size == 0 or voiced_ms < self._min_voiced_ms:
            return Recognition(None, "", 0.0, 0.0, duration_ms)
        if self._noise_floor_lsb > 0:
            samples = _with_noise_floor(samples, std_lsb=self._noise_floor_lsb)
        self._decoder.reinit_feat()  # fresh feature state: the result does not depend on earlier utterances
        self._decoder.start_utt()
        self._decoder.process_raw(samples.tobytes(), full_utt=True)
        self._decoder.end_utt()
        segments = [
            (s.word, s.start_frame, s.end_frame, math.log(s.ascore) if s.ascore > 0 else -math.inf)
            for s in (self._decoder.seg() or ())
        ]
        return recognition_from_segments(
            segments,
            duration_ms=duration_ms,
            min_confidence=self._min_confidence,
            label_min_confidence=self._label_min_confidence,
            synonyms=self._synonyms,
        )

    def start_utterance(self, *, t0_ms: float = 0.0) -> None:
        """Start listening (stimulus onset); ``t0_ms`` is the clock time of the next block's first sample."""
        self._listener.start(t0_ms=t0_ms)

    def accept(self, pcm: NDArray[np.int16]) -> Recognition | None:
        """Consume one 16-kHz block; the recognition of an utterance that ended in it, if any."""
        return self._listener.accept(pcm)

    def finish(self) -> Recognition | None:
        """Stop listening (stimulus offset); the recognition of an utterance still in progress, if any."""
        return self._listener.finish()


def _create_decoder() -> Decoder:
    try:
        from pocketsphinx import Decoder
    except ImportError as err:
        raise RecogniserError(
            f"pocketsphinx is not installed ({err}); install it with `pip install pocketsphinx` "
            "(it ships an English model), or use keyboard labels (keys 1–8)."
        ) from err
    try:
        return Decoder(samprate=16000, logfn=os.devnull)
    except (RuntimeError, ValueError) as err:
        raise RecogniserError(
            f"PocketSphinx could not load its English model ({err}); reinstall pocketsphinx, "
            "or use keyboard labels (keys 1–8)."
        ) from err


def _check_label_thresholds(thresholds: Mapping[str, float]) -> Mapping[str, float]:
    for label, value in thresholds.items():
        if label not in LABELS:
            raise ValueError(
                f"label_min_confidence keys must be labels ({', '.join(LABELS)}); got {label!r}."
            )
        check_unit_interval(**{f"label_min_confidence[{label!r}]": value})
    return MappingProxyType(dict(thresholds))


def _with_noise_floor(pcm: NDArray[np.int16], *, std_lsb: float) -> NDArray[np.int16]:
    noise = np.random.default_rng(0).normal(0.0, std_lsb, pcm.size)
    out: NDArray[np.int16] = np.clip(np.rint(pcm + noise), -32768, 32767).astype(np.int16)
    return out


def _add_variants(decoder: Decoder, variants: Mapping[str, tuple[str, ...]]) -> None:
    entries = []
    for word, prons in variants.items():
        known = {decoder.lookup_word(_nth(word, k)) for k in range(1, 10)} - {None}
        index = 1 if decoder.lookup_word(word) is None else 2
        for phones in prons:
            if phones in known:
                continue
            while index > 1 and decoder.lookup_word(_nth(word, index)) is not None:
                index += 1
            entries.append((_nth(word, index), phones))
            index += 1
    for i, (name, phones) in enumerate(entries):
        decoder.add_word(name, phones, update=i == len(entries) - 1)


def _nth(word: str, k: int) -> str:
    return word if k == 1 else f"{word}({k})"
