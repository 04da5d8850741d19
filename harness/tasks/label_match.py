"""Generated text -> class label, as LTU evaluates open-ended output on closed label sets.

First a normalised exact match against each class's answer text; otherwise the label nearest
to the text under a sentence-embedding model (all-MiniLM-L6-v2, offline). Where that model is
not installed, the nearest label by character-sequence similarity (difflib) stands in, and
the results say so. Every decision records which path took it, and per-class similarity
scores are kept for mAP.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from harness.tasks import text_embedding

EXACT, EMBEDDING, STRING = "exact", "embedding", "string"
_PUNCTUATION = re.compile(r"[^\w\s']|_")


def normalise(text: str) -> str:
    """Unicode-normalised, lower-case, punctuation and underscores to spaces, single-spaced."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_PUNCTUATION.sub(" ", text).split())


@dataclass(frozen=True)
class Decision:
    label: int  # index into the answer list
    path: str  # EXACT, EMBEDDING or STRING
    scores: np.ndarray  # (C,) similarity of the text to each answer; higher = closer


class LabelMatcher:
    """Decides a label for each generated text among fixed answer texts (one per class)."""

    def __init__(self, answers: Sequence[str], nearest: str = "auto") -> None:
        if nearest not in ("auto", EMBEDDING, STRING):
            raise ValueError(f"nearest must be auto, {EMBEDDING} or {STRING}, got {nearest!r}")
        self.answers = [normalise(a) for a in answers]
        use_embedding = nearest == EMBEDDING or (nearest == "auto" and text_embedding.available())
        self._embedder = text_embedding.shared_embedder() if use_embedding else None
        self._answer_vectors = self._embedder.embed(self.answers) if self._embedder else None
        self.nearest_path = EMBEDDING if self._embedder else STRING

    @property
    def source(self) -> str:
        """What decided the non-exact cases, for the results' `source` column."""
        return f"exact+{self._embedder.name}" if self._embedder else "exact+difflib"

    def _similarities(self, texts: list[str]) -> np.ndarray:
        if self._embedder is not None:
            return self._embedder.embed(texts) @ self._answer_vectors.T
        return np.array([[difflib.SequenceMatcher(None, t, a).ratio() for a in self.answers] for t in texts])

    def decide(self, texts: Sequence[str]) -> list[Decision]:
        normalised = [normalise(t) for t in texts]
        scores = self._similarities(normalised) if normalised else np.zeros((0, len(self.answers)))
        decisions = []
        for text, row in zip(normalised, scores):
            if text in self.answers:
                decisions.append(Decision(self.answers.index(text), EXACT, row))
            else:
                decisions.append(Decision(int(np.argmax(row)), self.nearest_path, row))
        return decisions
