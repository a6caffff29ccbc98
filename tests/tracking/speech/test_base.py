"""Tests for tracking/speech/base.py: the Recognition record, the label matcher, keys, the registry."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.labels import LABELS
from tracking.errors import TrackingError
from tracking.speech import RECOGNISERS, MicrophoneError, RecogniserError, SpeechError
from tracking.speech._checks import check_synonyms
from tracking.speech.base import (
    KEYBOARD_ONLY,
    SYNONYMS,
    Recognition,
    key_recognition,
    label_for_key,
    match_label,
)


class TestRecognition:
    def test_a_label_or_none(self) -> None:
        assert Recognition("happy", "happy", 0.9, 10.0, 20.0).recognised
        unrecognised = Recognition(None, "banana", 0.9, 10.0, 20.0)
        assert not unrecognised.recognised and unrecognised.duration_ms == 10.0

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"label": "joy"}, "label must be one of"),
            ({"confidence": 1.5}, "confidence"),
            ({"confidence": math.nan}, "confidence"),
            ({"start_ms": 30.0}, "start_ms <= end_ms"),
            ({"end_ms": math.inf}, "finite"),
            ({"source": "mouse"}, "source"),
        ],
    )
    def test_validates_itself(self, kwargs: dict[str, object], match: str) -> None:
        fields: dict[str, object] = {
            "label": "sad",
            "text": "sad",
            "confidence": 0.5,
            "start_ms": 0.0,
            "end_ms": 20.0,
            "source": "speech",
        }
        with pytest.raises(ValueError, match=match):
            Recognition(**{**fields, **kwargs})  # type: ignore[arg-type]


class TestMatchLabel:
    @pytest.mark.parametrize("label", LABELS)
    def test_each_label_names_itself(self, label: str) -> None:
        assert match_label(label) == label
        assert match_label(label.upper()) == label

    @pytest.mark.parametrize(
        ("word", "label"),
        [
            ("angry", "anger"),
            ("happiness", "happy"),
            ("sadness", "sad"),
            ("surprised", "surprise"),
            ("afraid", "fear"),
            ("scared", "fear"),
            ("disgusted", "disgust"),
            ("contemptuous", "contempt"),
        ],
    )
    def test_synonyms(self, word: str, label: str) -> None:
        assert match_label(word) == label

    @pytest.mark.parametrize(
        "text", ["", "   ", "banana", "[unk]", "happy banana", "happy sad", "not happy", "happy [unk]"]
    )
    def test_anything_else_is_unrecognised(self, text: str) -> None:
        assert match_label(text) is None

    def test_repeating_one_label_still_names_it(self) -> None:
        assert match_label("sad  sadness\nsad") == "sad"

    def test_custom_vocabulary(self) -> None:
        assert match_label("froh", synonyms={"froh": "happy"}) == "happy"
        assert match_label("happy", synonyms={"froh": "happy"}) is None

    @given(st.lists(st.sampled_from([*SYNONYMS, "banana", "next", "[unk]"]), max_size=4))
    def test_a_label_only_when_every_word_names_that_label(self, words: list[str]) -> None:
        got = match_label(" ".join(words))
        named = {SYNONYMS.get(w) for w in words}
        if got is None:
            assert not words or len(named) != 1 or None in named
        else:
            assert named == {got} and got in LABELS


class TestKeys:
    def test_keys_1_to_8_follow_the_label_order(self) -> None:
        assert [label_for_key(str(i)) for i in range(1, 9)] == list(LABELS)

    @pytest.mark.parametrize("key", ["0", "9", "a", "", " 1"])
    def test_other_keys_are_refused_with_the_list(self, key: str) -> None:
        with pytest.raises(ValueError, match="1=neutral"):
            label_for_key(key)

    def test_key_recognition(self) -> None:
        got = key_recognition("7", t_ms=1234.5)
        assert got == Recognition("anger", "7", 1.0, 1234.5, 1234.5, source="keyboard")


def test_registry_and_errors() -> None:
    assert set(RECOGNISERS) == {"pocketsphinx", "vosk"}
    assert KEYBOARD_ONLY not in RECOGNISERS
    assert issubclass(RecogniserError, SpeechError) and issubclass(MicrophoneError, SpeechError)
    assert issubclass(SpeechError, TrackingError)


class TestSynonymsCheck:
    @pytest.mark.parametrize(
        ("synonyms", "match"),
        [
            ({}, "non-empty mapping"),
            ({"froh": "joy"}, "must be one of"),
            ({"Happy": "happy"}, "single lower-case"),
            ({"very happy": "happy"}, "single lower-case"),
        ],
    )
    def test_refuses_bad_vocabularies(self, synonyms: dict[str, str], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            check_synonyms(synonyms)

    def test_returns_a_read_only_copy(self) -> None:
        given = {"froh": "happy"}
        checked = check_synonyms(given)
        given["traurig"] = "sad"
        assert dict(checked) == {"froh": "happy"}
        with pytest.raises(TypeError):
            checked["x"] = "sad"  # type: ignore[index]
