"""Teacher forcing for an LALM: the LM loss on the answer tokens only, audio and prompt as prefix."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from models.lalm import LALM
from models.tokenizer import ByteTokenizer

from models.train.recipe import format_prompt

IGNORE = -100  # cross_entropy's ignore_index: positions that carry no loss


def prompt_ids(tokenizer: ByteTokenizer, question: str, template: str) -> list[int]:
    """The instruction prefix every example shares, in training and in evaluation: bos + prompt."""
    return tokenizer.encode(format_prompt(question, template), bos=True)


def answer_batch(tokenizer: ByteTokenizer, prompt_ids: Sequence[int], answers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """[prompt; answer; eos; pad...] ids (B, P + L) and targets (B, P + L), where targets are the
    ids at answer and eos positions and IGNORE elsewhere. Padding sits after the answer, so under
    a causal LM it never influences the positions that carry loss."""
    encoded = [tokenizer.encode(a, eos=True) for a in answers]
    length = max(len(e) for e in encoded)
    ids = torch.full((len(answers), len(prompt_ids) + length), tokenizer.pad_id, dtype=torch.long)
    targets = torch.full_like(ids, IGNORE)
    ids[:, : len(prompt_ids)] = torch.tensor(prompt_ids, dtype=torch.long)
    for row, answer in enumerate(encoded):
        span = slice(len(prompt_ids), len(prompt_ids) + len(answer))
        ids[row, span] = torch.tensor(answer, dtype=torch.long)
        targets[row, span] = ids[row, span]
    return ids, targets


def teacher_forcing_loss(lalm: LALM, feats: torch.Tensor, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over answer positions.

    feats (B, T, 128) fbank; ids, targets (B, P + L) from `answer_batch`. The LALM's logits cover
    [audio (A); ids]; the logit at sequence position A + k - 1 predicts ids[:, k].
    """
    logits = lalm(feats, ids)  # (B, A + P + L, vocab)
    audio = logits.shape[1] - ids.shape[1]
    predictions = logits[:, audio - 1: audio - 1 + ids.shape[1]]
    return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)


def spec_augment(feats: torch.Tensor, generator: torch.Generator, time_mask: int = 12, freq_mask: int = 16) -> torch.Tensor:
    """One random time and one random frequency band per clip set to the mean (0 after
    normalisation): (B, T, F) -> (B, T, F). Widths are uniform in [0, time_mask] / [0, freq_mask]."""
    batch, frames, bins = feats.shape
    def band(size: int, limit: int) -> torch.Tensor:
        width = torch.randint(0, limit + 1, (batch, 1), generator=generator)
        start = (torch.rand((batch, 1), generator=generator) * (size - width + 1)).long()
        position = torch.arange(size).unsqueeze(0)
        return (position >= start) & (position < start + width)  # (B, size)
    masked = band(frames, time_mask).unsqueeze(-1) | band(bins, freq_mask).unsqueeze(1)
    return feats.masked_fill(masked.to(feats.device), 0.0)
