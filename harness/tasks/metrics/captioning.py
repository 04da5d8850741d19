"""Captioning metrics as the COCO caption toolkit defines them (BLEU-1..4, ROUGE-L, CIDEr-D).

Inputs are `hypotheses: {clip: caption}` and `references: {clip: [captions]}` over the same
clips; captions are lower-cased and stripped of punctuation first (`tokenize`).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Mapping, Sequence

import numpy as np

Tokens = list[str]
_NON_WORD = re.compile(r"[^a-z0-9' ]+")

ROUGE_BETA = 1.2  # recall weighted 1.2x precision, as in the COCO toolkit
CIDER_N = 4
CIDER_SIGMA = 6.0  # width of CIDEr-D's Gaussian length penalty, in tokens
CIDER_SCALE = 10.0


def tokenize(caption: str) -> Tokens:
    """Lower-case, drop punctuation (keeping apostrophes inside words), split on whitespace."""
    words = (w.strip("'") for w in _NON_WORD.sub(" ", caption.lower()).split())
    return [w for w in words if w]


def _ngrams(tokens: Tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _paired(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> list[tuple[Tokens, list[Tokens]]]:
    if set(hypotheses) != set(references):
        raise ValueError("hypotheses and references must cover the same clips")
    pairs = []
    for key in sorted(hypotheses):
        if not references[key]:
            raise ValueError(f"clip {key!r} has no reference caption")
        pairs.append((tokenize(hypotheses[key]), [tokenize(r) for r in references[key]]))
    return pairs


def bleu(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]], max_n: int = 4) -> list[float]:
    """Corpus BLEU-1..max_n: clipped n-gram precisions summed over the corpus, their geometric
    mean up to each n, times the brevity penalty exp(1 - r/c) when the hypotheses (c tokens) are
    shorter than the references, r summing each clip's reference length closest to its hypothesis
    (the shorter one on a tie)."""
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    hyp_len = ref_len = 0
    for hyp, refs in _paired(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(hyp, n)
            most_in_a_ref = Counter()
            for ref in refs:
                most_in_a_ref |= _ngrams(ref, n)  # element-wise max over references
            matches[n - 1] += sum(min(c, most_in_a_ref[g]) for g, c in counts.items())
            totals[n - 1] += sum(counts.values())
    if hyp_len == 0:
        return [0.0] * max_n
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    scores, log_sum = [], 0.0
    for n in range(max_n):
        if matches[n] == 0:
            scores += [0.0] * (max_n - n)
            break
        log_sum += math.log(matches[n] / totals[n])
        scores.append(brevity * math.exp(log_sum / (n + 1)))
    return scores


def _lcs_length(a: Tokens, b: Tokens) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> float:
    """Mean over clips of the LCS F-measure (beta 1.2), where precision and recall are each the
    best over the clip's references, as in the COCO toolkit."""
    scores = []
    for hyp, refs in _paired(hypotheses, references):
        lcs = [_lcs_length(hyp, r) for r in refs]
        precision = max((l / len(hyp) if hyp else 0.0) for l in lcs)
        recall = max((l / len(r) if r else 0.0) for l, r in zip(lcs, refs))
        if precision == 0 or recall == 0:
            scores.append(0.0)
        else:
            b2 = ROUGE_BETA**2
            scores.append((1 + b2) * precision * recall / (recall + b2 * precision))
    return float(np.mean(scores)) if scores else float("nan")


def _tfidf(tokens: Tokens, n: int, log_docs: float, doc_freq: Counter) -> dict[tuple, float]:
    """n-gram counts weighted by log(#clips / document frequency of the n-gram in the references)."""
    return {g: c * (log_docs - math.log(max(1.0, doc_freq[g]))) for g, c in _ngrams(tokens, n).items()}


def _norm(vector: dict[tuple, float]) -> float:
    return math.sqrt(sum(v * v for v in vector.values()))


def cider_d(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> float:
    """CIDEr-D: for n = 1..4, the cosine between the hypothesis' and each reference's tf-idf
    n-gram vectors, with the hypothesis' weights clipped at the reference's, times a Gaussian
    penalty exp(-(len difference)^2 / (2 * 6^2)); averaged over references and n, times 10,
    averaged over clips. Document frequencies come from the references of the evaluated clips,
    so a single clip scores 0 (every n-gram occurs in all "documents")."""
    pairs = _paired(hypotheses, references)
    doc_freq: Counter = Counter()
    for _, refs in pairs:
        doc_freq.update({g for r in refs for n in range(1, CIDER_N + 1) for g in _ngrams(r, n)})
    log_docs = math.log(len(pairs)) if pairs else 0.0
    clip_scores = []
    for hyp, refs in pairs:
        per_ref = []
        for ref in refs:
            penalty = math.exp(-((len(hyp) - len(ref)) ** 2) / (2 * CIDER_SIGMA**2))
            per_n = []
            for n in range(1, CIDER_N + 1):
                h, r = _tfidf(hyp, n, log_docs, doc_freq), _tfidf(ref, n, log_docs, doc_freq)
                dot = sum(min(w, r.get(g, 0.0)) * r.get(g, 0.0) for g, w in h.items())
                norms = _norm(h) * _norm(r)
                per_n.append(penalty * dot / norms if norms else 0.0)
            per_ref.append(np.mean(per_n))
        clip_scores.append(CIDER_SCALE * float(np.mean(per_ref)))
    return float(np.mean(clip_scores)) if clip_scores else float("nan")
