"""Tests for tracking/speech/vosk_recogniser.py: everything that needs no Vosk model.

No Vosk English model can be downloaded here; these tests cover the model-folder errors (with the
real vosk library), the grammar, and parsing of Vosk's documented result JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.labels import LABELS
from tracking.speech.base import SYNONYMS, Recognition
from tracking.speech.errors import RecogniserError
from tracking.speech.vosk_recogniser import (
    UNKNOWN_WORD,
    VoskRecogniser,
    VoskWord,
    check_vosk_model,
    parse_vosk_result,
    recognition_from_vosk,
    vosk_grammar,
)

# As Vosk prints them with SetWords(True) (vosk-api, python/example/test_words.py output format).
HAPPY = """{
  "result" : [{
      "conf" : 0.981234,
      "end" : 1.020000,
      "start" : 0.510000,
      "word" : "happy"
    }],
  "text" : "happy"
}"""
UNKNOWN_THEN_SAD = (
    '{"result": [{"conf": 1.0, "end": 0.6, "start": 0.3, "word": "[unk]"},'
    ' {"conf": 0.7, "end": 1.2, "start": 0.8, "word": "sad"}], "text": "[unk] sad"}'
)
NOTHING = '{\n  "text" : ""\n}'


class TestGrammar:
    def test_label_words_then_unk(self) -> None:
        grammar = json.loads(vosk_grammar(SYNONYMS))
        assert grammar[:8] == list(LABELS) and grammar[-1] == UNKNOWN_WORD
        assert set(grammar) == {*SYNONYMS, UNKNOWN_WORD} and len(grammar) == len(SYNONYMS) + 1

    def test_duplicates_and_a_given_unk_appear_once(self) -> None:
        assert json.loads(vosk_grammar(["sad", "sad", "[unk]", "happy"])) == ["sad", "happy", "[unk]"]

    def test_escapes_quotes(self) -> None:
        assert json.loads(vosk_grammar(['say "sad"'])) == ['say "sad"', "[unk]"]

    @pytest.mark.parametrize("words", [[], [""], ["  "]])
    def test_needs_words(self, words: list[str]) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            vosk_grammar(words)


class TestParse:
    def test_one_word(self) -> None:
        assert parse_vosk_result(HAPPY) == (VoskWord("happy", 0.981234, 0.51, 1.02),)

    def test_several_words(self) -> None:
        words = parse_vosk_result(UNKNOWN_THEN_SAD)
        assert [w.word for w in words] == ["[unk]", "sad"] and words[1].confidence == 0.7

    def test_nothing_heard(self) -> None:
        assert parse_vosk_result(NOTHING) == ()

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("not json", "must be JSON"),
            ('{"partial": "hap"}', "'text' string"),
            ('["happy"]', "'text' string"),
            ('{"text": "happy"}', "SetWords"),
            ('{"text": "happy", "result": [{"word": "happy"}]}', "word, conf, start and end"),
            (
                '{"text": "happy", "result": [{"word": "happy", "conf": 2, "start": 0, "end": 1}]}',
                "confidence",
            ),
        ],
    )
    def test_malformed(self, text: str, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            parse_vosk_result(text)


class TestRecognition:
    def test_a_label(self) -> None:
        got = recognition_from_vosk(parse_vosk_result(HAPPY), duration_ms=1500.0)
        assert got == Recognition("happy", "happy", 0.981234, 510.0, 1020.0)

    def test_unk_is_never_a_label(self) -> None:
        got = recognition_from_vosk(parse_vosk_result(UNKNOWN_THEN_SAD), duration_ms=1500.0)
        assert got.label is None and got.text == "[unk] sad" and got.confidence == 0.7
        assert (got.start_ms, got.end_ms) == (300.0, 1200.0)

    def test_low_confidence_is_unrecognised(self) -> None:
        got = recognition_from_vosk([VoskWord("fear", 0.3, 0.1, 0.4)], duration_ms=500.0)
        assert got.label is None and got.text == "fear"
        assert recognition_from_vosk(
            [VoskWord("fear", 0.3, 0.1, 0.4)], duration_ms=500.0, min_confidence=0.2
        ).label

    def test_synonym(self) -> None:
        assert recognition_from_vosk([VoskWord("scared", 0.9, 0.1, 0.4)], duration_ms=500.0).label == "fear"

    def test_nothing(self) -> None:
        assert recognition_from_vosk([], duration_ms=800.0) == Recognition(None, "", 0.0, 0.0, 800.0)


class TestModelFolder:
    def test_missing_folder(self, tmp_path: Path) -> None:
        missing = tmp_path / "vosk-model-small-en-us-0.15"
        with pytest.raises(RecogniserError) as info:
            check_vosk_model(missing)
        message = str(info.value)
        assert message.startswith(f"No Vosk model at {str(missing)!r}")
        assert (
            "vosk-model-small-en-us-0.15" in message and "pocketsphinx" in message and "keys 1–8" in message
        )

    def test_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "model.zip").write_bytes(b"PK")
        with pytest.raises(RecogniserError, match="is a file, not a Vosk model folder"):
            check_vosk_model(tmp_path / "model.zip")

    def test_a_folder_without_model(self, tmp_path: Path) -> None:
        with pytest.raises(RecogniserError, match=r"holds no Vosk model \(no am/final.mdl\)"):
            check_vosk_model(tmp_path)

    @pytest.mark.parametrize("layout", ["am/final.mdl", "final.mdl"])
    def test_model_layouts_pass_the_check(self, tmp_path: Path, layout: str) -> None:
        (tmp_path / layout).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / layout).write_bytes(b"")
        assert check_vosk_model(str(tmp_path)) == tmp_path

    def test_recogniser_on_a_missing_folder(self, tmp_path: Path) -> None:
        with pytest.raises(RecogniserError, match="No Vosk model at"):
            VoskRecogniser(tmp_path / "nothing")

    def test_recogniser_on_a_broken_model(self, tmp_path: Path) -> None:
        (tmp_path / "am").mkdir()
        (tmp_path / "am" / "final.mdl").write_bytes(b"not a model")
        with pytest.raises(RecogniserError, match="Vosk could not load the model"):
            VoskRecogniser(tmp_path)  # the real vosk library refuses it

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [({"min_confidence": -0.1}, "min_confidence"), ({"min_voiced_ms": float("inf")}, "min_voiced_ms")],
    )
    def test_validates_options_first(self, tmp_path: Path, kwargs: dict[str, float], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            VoskRecogniser(tmp_path, **kwargs)  # type: ignore[arg-type]
