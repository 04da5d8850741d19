"""Evaluate a checkpoint on a dataset split: generate answers, decide labels, score them.

Classification: generated text -> label by `LabelMatcher` (exact match, else nearest label),
then accuracy, macro-F1 and mAP (per-class scores = similarity of the text to each label, as
LTU ranks labels). Captioning: BLEU-1..4, ROUGE-L, CIDEr-D here; METEOR and SPICE through their
Java jars when present (else NaN, status "skipped"); SPIDEr = mean of CIDEr-D and SPICE.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from harness.tasks.dataset import Clip, TaskDataset, load_waves
from harness.tasks.label_match import EXACT, LabelMatcher
from harness.tasks.metrics import accuracy, bleu, cider_d, macro_f1, mean_average_precision, rouge_l
from harness.tasks.metrics.java_scorers import meteor, spice
from models.train import Checkpoint, prompt_ids


@dataclass
class Score:
    """One metric of one evaluation: a row of the results table once identity is added."""

    metric: str
    value: float
    n: int
    status: str = "ok"
    note: str = ""
    source: str = ""


@dataclass
class Evaluation:
    dataset: TaskDataset
    scores: list[Score]
    predictions: list[dict]  # per clip: key, text, reference, decided label / decision path
    skipped: list[tuple[Clip, str]]
    prompt_tokens: int
    new_tokens: int
    batch_size: int
    seconds: float  # generation wall time (model work only, not label matching)


@dataclass(frozen=True)
class EvalOptions:
    batch_size: int = 16
    max_new_tokens: int | None = None  # None: the checkpoint's own (longest training answer + eos)
    limit: int | None = None  # evaluate only the first N clips (smoke tests)
    nearest: str = "auto"  # label matcher for non-exact answers: auto | embedding | string
    meteor_jar: str | None = None
    spice_jar: str | None = None


def generate_answers(checkpoint: Checkpoint, dataset: TaskDataset, clips: list[Clip], options: EvalOptions,
                     new_tokens: int) -> tuple[list[Clip], list[str], list[tuple[Clip, str]], int, float]:
    """Greedy answers for every readable clip -> (clips, texts, skipped, prompt tokens, seconds)."""
    lalm, tokenizer = checkpoint.lalm, checkpoint.tokenizer
    prefix = prompt_ids(tokenizer, dataset.question, checkpoint.prompt_template)
    kept, texts, skipped, seconds = [], [], [], 0.0
    for start in range(0, len(clips), options.batch_size):
        loaded = load_waves(clips[start:start + options.batch_size], dataset.clip_seconds)
        skipped += loaded.skipped
        if not loaded.clips:
            continue
        waves = torch.from_numpy(loaded.waves).to(lalm.device)
        prompt = torch.tensor([prefix] * len(loaded.clips), device=lalm.device)
        began = time.perf_counter()
        ids = lalm.generate(waves, prompt, new_tokens)
        seconds += time.perf_counter() - began
        kept += loaded.clips
        texts += [tokenizer.decode(row) for row in ids.tolist()]
    return kept, texts, skipped, len(prefix), seconds


def score_classification(dataset: TaskDataset, clips: list[Clip], texts: list[str], nearest: str) -> tuple[list[Score], list[dict]]:
    matcher = LabelMatcher(dataset.answers, nearest=nearest)
    decisions = matcher.decide(texts)
    classes = list(dataset.classes)
    n = len(clips)
    predictions = [{"key": c.key, "text": t, "reference": list(c.labels), "label": classes[d.label], "decided_by": d.path}
                   for c, t, d in zip(clips, texts, decisions)]
    exact = sum(d.path == EXACT for d in decisions)
    how = f"{exact} of {n} answers matched a label exactly, the rest by nearest label ({matcher.nearest_path})"
    source = matcher.source
    if dataset.multi_label:
        # Open-ended answers name one label; for multi-label sets only the ranking metric applies.
        scores = []
    else:
        truth, predicted = [c.labels[0] for c in clips], [classes[d.label] for d in decisions]
        scores = [Score("accuracy", accuracy(truth, predicted), n, note=how, source=source),
                  Score("macro_f1", macro_f1(truth, predicted), n, note=how, source=source)]
    relevant = np.array([[cls in c.labels for cls in classes] for c in clips], dtype=bool).reshape(n, len(classes))
    similarity = np.stack([d.scores for d in decisions]) if decisions else np.zeros((0, len(classes)))
    scores.append(Score("mAP", mean_average_precision(similarity, relevant) if n else math.nan, n,
                        note="classes ranked by similarity of the answer to each label", source=source))
    scores.append(Score("exact_match_rate", exact / n if n else math.nan, n, note=how, source=source))
    return scores, predictions


def score_captioning(clips: list[Clip], texts: list[str], options: EvalOptions) -> tuple[list[Score], list[dict]]:
    hypotheses = {c.key: t for c, t in zip(clips, texts)}
    references = {c.key: list(c.captions) for c in clips}
    n = len(clips)
    predictions = [{"key": c.key, "text": t, "reference": list(c.captions)} for c, t in zip(clips, texts)]
    if not n:
        return [], predictions
    ours = "lalm-bench (COCO caption definitions)"
    scores = [Score(f"bleu_{i + 1}", v, n, source=ours) for i, v in enumerate(bleu(hypotheses, references))]
    scores += [Score("rouge_l", rouge_l(hypotheses, references), n, source=ours),
               Score("cider_d", cider_d(hypotheses, references), n, source=ours)]
    for result in (meteor(hypotheses, references, options.meteor_jar), spice(hypotheses, references, options.spice_jar)):
        scores.append(Score(result.metric, result.value, n if result.status == "ok" else 0, result.status,
                            result.note, source=f"{result.metric} jar"))
    cider, spice_score = scores[-3].value, scores[-1]
    if spice_score.status == "ok":
        scores.append(Score("spider", (cider + spice_score.value) / 2, n, source="mean of cider_d and spice"))
    else:
        scores.append(Score("spider", math.nan, 0, "skipped", f"needs SPICE: {spice_score.note}"))
    return scores, predictions


def evaluate(checkpoint: Checkpoint, dataset: TaskDataset, options: EvalOptions) -> Evaluation:
    clips = list(dataset.clips)[: options.limit] if options.limit else list(dataset.clips)
    new_tokens = options.max_new_tokens or int(checkpoint.config.get("training", {}).get("max_new_tokens", 32))
    kept, texts, skipped, prompt_tokens, seconds = generate_answers(checkpoint, dataset, clips, options, new_tokens)
    if dataset.kind == "classification":
        scores, predictions = score_classification(dataset, kept, texts, options.nearest)
    else:
        scores, predictions = score_captioning(kept, texts, options)
    scores.append(Score("skipped_clips", float(len(skipped)), len(clips),
                        note="; ".join(reason for _, reason in skipped[:3]) + (" ..." if len(skipped) > 3 else "")))
    return Evaluation(dataset, scores, predictions, skipped, prompt_tokens, new_tokens, options.batch_size, seconds)
