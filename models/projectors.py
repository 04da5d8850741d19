"""Projectors: encoder output -> LM audio tokens (B, num_tokens, d_lm), 32 tokens per 10 s.

LTU's for AST pools the patch grid (mean over frequency, then pooling in time); ssLAM's for
DASS convolves the feature map once more (3x3, stride 2) and flattens it. Either fits any LM width.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PoolProjector(nn.Module):
    """LTU-style. hidden (B, n_freq, n_time, D) -> (B, num_tokens, d_lm).

    Mean over frequency, adaptive average pooling in time to `num_tokens`, LayerNorm, Linear.
    """

    def __init__(self, d_enc: int, d_lm: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_enc)
        self.proj = nn.Linear(d_enc, d_lm)

    def forward(self, hidden: torch.Tensor, num_tokens: int) -> torch.Tensor:
        x = hidden.mean(dim=1).transpose(1, 2)  # (B, D, n_time)
        x = F.adaptive_avg_pool1d(x, num_tokens).transpose(1, 2)
        return self.proj(self.norm(x))


class ConvProjector(nn.Module):
    """ssLAM-style. hidden (B, T/32, 4, D) -> (B, T/32, d_lm) via a 3x3 stride-2 conv and a Linear.

    The conv halves both axes (T/64 x 2) and the flattened map keeps time-major order, so the
    token count is T/32 (32 per 1024 frames = 10 s) and must equal `num_tokens`.
    """

    def __init__(self, d_enc: int, d_lm: int):
        super().__init__()
        self.conv = nn.Conv2d(d_enc, d_enc, 3, stride=2, padding=1)
        self.proj = nn.Linear(d_enc, d_lm)

    def forward(self, hidden: torch.Tensor, num_tokens: int) -> torch.Tensor:
        x = self.conv(hidden.permute(0, 3, 1, 2))  # (B, D, T/64, 2)
        x = x.flatten(2).transpose(1, 2)
        if x.shape[1] != num_tokens:
            raise ValueError(f"conv projector made {x.shape[1]} tokens, expected {num_tokens}")
        return self.proj(x)
