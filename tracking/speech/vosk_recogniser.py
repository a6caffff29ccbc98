"""Spoken labels with Vosk (Kaldi), for a model folder the user provides.

Vosk recognises with a runtime grammar: the label words and their synonyms plus ``"[unk]"``, which
absorbs any other word, so an utterance outside the vocabulary comes back as ``[unk]`` and stays
unrecognised. Word confidences come from Vosk's lattice (``SetWords(True)``); a label is accepted only
when its confidence reaches ``min_confidence``. Runtime grammars need a model with a dynamic graph,
such as the small models (``vosk-model-small-en-us-0.15``); big models ignore the grammar and decode
freely, which still works through the same word → label matching.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (labels spoken into a microphone).
.. [2] Povey et al. (2011), The Kaldi speech recognition toolkit, ASRU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.labels import LABELS
from tracking.speech._checks import check_non_negative, check_synonyms, check_unit_interval
from tracking.speech.audio import check_pcm16, voiced_duration_ms
from tracking.speech.base import SYNONYMS, Recognition, match_label
from tracking.speech.endpointing import Endpointing, UtteranceListener
from tracking.speech.errors import RecogniserError

__all__ = [
    "UNKNOWN_WORD",
    "VoskRecogniser",
    "VoskWord",
    "check_vosk_model",
    "parse_vosk_result",
    "recognition_from_vosk",
    "vosk_grammar",
]

UNKNOWN_WORD = "[unk]"
"""Vosk's grammar entry that stands for any word outside the grammar."""

_CHUNK_SAMPLES = 4000


@dataclass(frozen=True, slots=True)
class VoskWord:
    """One word of a Vosk result (``SetWords(True)``).

    Parameters
    ----------
    word : str
        As Vosk spells it (``"[unk]"`` for an unknown word).
    confidence : float
        Vosk's ``conf``, in [0, 1].
    start_s, end_s : float
        Vosk's ``start`` and ``end``, in seconds from the first sample given to the recogniser.
    """

    word: str
    confidence: float
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must lie in [0, 1]; got {self.confidence!r} for {self.word!r}.")
        if not (
            math.isfinite(self.start_s) and math.isfinite(self.end_s) and 0 <= self.start_s <= self.end_s
        ):
            raise ValueError(
                f"need 0 <= start_s <= end_s; got {self.start_s!r}, {self.end_s!r} for {self.word!r}."
            )


def vosk_grammar(words: Iterable[str]) -> str:
    """The JSON grammar ``KaldiRecognizer(model, rate, grammar)`` takes: the words, then ``"[unk]"``.

    Parameters
    ----------
    words : iterable of str
        Label words and synonyms (duplicates are dropped, order kept).

    Returns
    -------
    str
        A JSON list of strings, e.g. ``'["neutral", "happy", ..., "[unk]"]'``.
    """
    unique = list(dict.fromkeys(words))
    if not unique or not all(isinstance(w, str) and w.strip() for w in unique):
        raise ValueError(f"words must be non-empty strings, at least one; got {unique!r}.")
    return json.dumps([w for w in unique if w != UNKNOWN_WORD] + [UNKNOWN_WORD])


def parse_vosk_result(result_json: str) -> tuple[VoskWord, ...]:
    """Words of one Vosk ``Result()``/``FinalResult()`` JSON text.

    Parameters
    ----------
    result_json : str
        E.g. ``'{"result": [{"conf": 0.98, "end": 1.02, "start": 0.51, "word": "happy"}], "text": "happy"}'``;
        ``'{"text": ""}'`` when nothing was heard.

    Returns
    -------
    tuple of VoskWord
        In spoken order; empty when nothing was heard.

    Raises
    ------
    ValueError
        For text that is not such a result (not JSON, no ``"text"``, or text without the word list
        that ``SetWords(True)`` adds).
    """
    try:
        result = json.loads(result_json)
    except json.JSONDecodeError as err:
        raise ValueError(f"a Vosk result must be JSON; got {result_json[:80]!r} ({err}).") from err
    if not isinstance(result, dict) or not isinstance(result.get("text"), str):
        raise ValueError(f"a Vosk result is an object with a 'text' string; got {result_json[:80]!r}.")
    entries = result.get("result", [])
    if result["text"].strip() and not entries:
        raise ValueError(f"Vosk result without word list; call SetWords(True). Got {result_json[:80]!r}.")
    try:
        return tuple(
            VoskWord(str(e["word"]), float(e["conf"]), float(e["start"]), float(e["end"])) for e in entries
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"each Vosk word needs word, conf, start and end; got {entries!r}.") from err


def recognition_from_vosk(
    words: Iterable[VoskWord],
    *,
    duration_ms: float,
    min_confidence: float = 0.5,
    synonyms: Mapping[str, str] = SYNONYMS,
) -> Recognition:
    """Turn the words of one utterance into a :class:`~tracking.speech.base.Recognition`; pure.

    The confidence is the lowest word confidence; the label is set only when the words name exactly
    one label (``[unk]`` never does) and the confidence reaches ``min_confidence``.

    Returns
    -------
    Recognition
        Times relative to the start of the decoded audio; unrecognised, ``text=""``, confidence 0 and
        the whole ``duration_ms`` when there are no words.
    """
    heard = list(words)
    if not heard:
        return Recognition(None, "", 0.0, 0.0, float(duration_ms))
    text = " ".join(w.word for w in heard).lower()
    confidence = min(w.confidence for w in heard)
    label = match_label(text, synonyms=synonyms) if confidence >= min_confidence else None
    return Recognition(label, text, confidence, 1000.0 * heard[0].start_s, 1000.0 * heard[-1].end_s)


def check_vosk_model(model_path: str | Path) -> Path:
    """Return ``model_path`` as a Path if it is the folder of an unpacked Vosk model, else raise.

    A Vosk model folder holds ``am/final.mdl`` (or ``final.mdl`` in the old layout).

    Raises
    ------
    RecogniserError
        With what is wrong and what to give instead.
    """
    path = Path(model_path).expanduser()
    hint = (
        "give the folder of an unpacked Vosk model (e.g. vosk-model-small-en-us-0.15, from "
        "https://alphacephei.com/vosk/models), or use the pocketsphinx recogniser / keyboard labels "
        "(keys 1–8)."
    )
    if not path.exists():
        raise RecogniserError(f"No Vosk model at {str(path)!r}: {hint}")
    if not path.is_dir():
        raise RecogniserError(f"{str(path)!r} is a file, not a Vosk model folder: {hint}")
    if not ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()):
        raise RecogniserError(f"{str(path)!r} holds no Vosk model (no am/final.mdl): {hint}")
    return path


class VoskRecogniser:
    """Spoken-label recogniser on a Vosk model folder, with ``[unk]`` rejection of other words.

    Parameters
    ----------
    model_path : str or Path
        Folder of an unpacked Vosk model (see :func:`check_vosk_model`).
    synonyms : mapping of str to str
        Spoken word → label (default :data:`~tracking.speech.base.SYNONYMS`); words the model does not
        know are left out of the grammar.
    min_confidence : float
        Word confidence needed to accept a label, in [0, 1] (default 0.5).
    min_voiced_ms : float
        Utterances with less voiced audio are noise and come back unrecognised without decoding
        (default 50 ms; 0 disables the check).
    endpointing : Endpointing, optional
        Options of the utterance endpointer.

    Raises
    ------
    RecogniserError
        When vosk is missing, the folder holds no model, the model cannot be loaded, or it knows no
        word for some label.
    """

    name = "vosk"
    sample_rate_hz = 16000

    def __init__(
        self,
        model_path: str | Path,
        *,
        synonyms: Mapping[str, str] = SYNONYMS,
        min_confidence: float = 0.5,
        min_voiced_ms: float = 50.0,
        endpointing: Endpointing | None = None,
    ) -> None:
        self._min_confidence = check_unit_interval(min_confidence=min_confidence)
        self._min_voiced_ms = check_non_negative(min_voiced_ms=min_voiced_ms)
        self._synonyms = check_synonyms(synonyms)
        path = check_vosk_model(model_path)
        vosk = _import_vosk()
        self._model = _load_model(vosk, path)
        known = [w for w in self._synonyms if self._model.vosk_model_find_word(w) != -1]
        lacking = sorted(set(LABELS) - {self._synonyms[w] for w in known})
        if lacking:
            raise RecogniserError(
                f"The Vosk model at {str(path)!r} knows no word for {', '.join(lacking)}; use an English "
                "model (e.g. vosk-model-small-en-us-0.15), or the pocketsphinx recogniser / keyboard labels "
                "(keys 1–8)."
            )
        self._recognizer = vosk.KaldiRecognizer(self._model, self.sample_rate_hz, vosk_grammar(known))
        self._recognizer.SetWords(True)
        self._listener = UtteranceListener(
            self.decode, sample_rate_hz=self.sample_rate_hz, endpointing=endpointing
        )

    @property
    def max_block_ms(self) -> float:
        """Longest block :meth:`accept` takes (the endpointer's trailing silence)."""
        return self._listener.max_block_ms

    def decode(self, pcm: NDArray[np.int16]) -> Recognition:
        """Recognise one whole utterance (16 kHz mono int16); times relative to ``pcm[0]``."""
        samples = check_pcm16(pcm=pcm)
        duration_ms = 1000.0 * samples.size / self.sample_rate_hz
        voiced_ms = voiced_duration_ms(samples, sample_rate_hz=self.sample_rate_hz) if samples.size else 0.0
        if samples.size == 0 or voiced_ms < self._min_voiced_ms:
            return Recognition(None, "", 0.0, 0.0, duration_ms)
        self._recognizer.Reset()
        words: list[VoskWord] = []
        for start in range(0, samples.size, _CHUNK_SAMPLES):
            if self._recognizer.AcceptWaveform(samples[start : start + _CHUNK_SAMPLES].tobytes()):
                words += parse_vosk_result(self._recognizer.Result())
        words += parse_vosk_result(self._recognizer.FinalResult())
        return recognition_from_vosk(
            words, duration_ms=duration_ms, min_confidence=self._min_confidence, synonyms=self._synonyms
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


def _import_vosk() -> Any:
    try:
        import vosk
    except (ImportError, OSError) as err:
        raise RecogniserError(
            f"vosk is not available ({err}); install it with `pip install vosk`, or use the pocketsphinx "
            "recogniser / keyboard labels (keys 1–8)."
        ) from err
    vosk.SetLogLevel(-1)
    return vosk


def _load_model(vosk: Any, path: Path) -> Any:
    try:
        return vosk.Model(str(path))
    except Exception as err:  # vosk raises a bare Exception("Failed to create a model")
        raise RecogniserError(
            f"Vosk could not load the model at {str(path)!r} ({err}); the folder may be incomplete or from "
            "another Vosk version. Unpack the model again, or use the pocketsphinx recogniser / keyboard "
            "labels (keys 1–8)."
        ) from err
