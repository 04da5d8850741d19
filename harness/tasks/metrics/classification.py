"""Classification metrics: accuracy, macro-F1 and mean average precision."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Fraction of items whose predicted label equals the true one (NaN for no items)."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if not truth:
        return float("nan")
    return float(np.mean([t == p for t, p in zip(truth, predicted)]))


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over every class that occurs in `truth` or `predicted`.

    A class that is never true and never predicted has no defined F1 and is left out; a class
    that is true but never predicted (or the reverse) scores 0.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if not truth:
        return float("nan")
    scores = []
    for label in sorted(set(truth) | set(predicted)):
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Area under the step precision-recall curve of one class: sum over thresholds of
    (recall gained) x (precision there). Items with tied scores enter at the same threshold.

    scores (N,) higher = more likely; relevant (N,) bool. NaN when no item is relevant.
    """
    scores, relevant = np.asarray(scores, dtype=np.float64), np.asarray(relevant, dtype=bool)
    positives = int(relevant.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_relevant = scores[order], relevant[order]
    # The last index of each run of equal scores is where that threshold's counts are read.
    threshold_ends = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(sorted_scores) - 1]
    hits = np.cumsum(sorted_relevant)[threshold_ends]
    precision = hits / (threshold_ends + 1)
    recall_gain = np.diff(np.r_[0, hits]) / positives
    return float(np.sum(recall_gain * precision))


def mean_average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mean of per-class AP over classes with at least one relevant item.

    scores (N, C) and relevant (N, C) bool: multi-label targets, or one-hot for single-label sets.
    """
    scores, relevant = np.asarray(scores), np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and targets {relevant.shape} must both be (N, C)")
    per_class = [average_precision(scores[:, c], relevant[:, c]) for c in range(scores.shape[1])]
    defined = [ap for ap in per_class if not np.isnan(ap)]
    return float(np.mean(defined)) if defined else float("nan")
