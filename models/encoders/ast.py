"""AST: the Audio Spectrogram Transformer, a ViT over overlapping 16x16 fbank patches.

Built from `transformers.ASTModel` so its weights load from a Hugging Face AST checkpoint.
The one change: the positional-embedding grid is interpolated in time to the input length, so
any audio length works (attention cost then grows with the square of the patch count — which
is what the harness sets out to measure).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ASTConfig, ASTModel


@dataclass(frozen=True)
class ASTShape:
    hidden: int
    layers: int
    heads: int
    mlp: int
    # Frames the positional-embedding grid was laid out for; other lengths interpolate it.
    max_frames: int = 1024
    patch: int = 16
    stride: int = 10  # AST's overlapping patches (stride 10 in time and frequency)


def ast_config(shape: ASTShape) -> ASTConfig:
    return ASTConfig(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.mlp,
        patch_size=shape.patch,
        frequency_stride=shape.stride,
        time_stride=shape.stride,
        max_length=shape.max_frames,
        num_mel_bins=128,
        attn_implementation="sdpa",
    )


class ASTEncoder(nn.Module):
    """fbank (B, T, 128) -> patch tokens on their grid (B, n_freq, n_time, D).

    `n_freq = (128 - 16) // stride + 1` (12 at stride 10) and `n_time = (T - 16) // stride + 1`;
    the two AST summary tokens (CLS, distillation) are dropped from the output.
    """

    def __init__(self, shape: ASTShape):
        super().__init__()
        self.shape = shape
        self.ast = ASTModel(ast_config(shape))
        self.n_freq = (128 - shape.patch) // shape.stride + 1
        self.n_time_trained = (shape.max_frames - shape.patch) // shape.stride + 1

    @property
    def width(self) -> int:
        return self.shape.hidden

    def grid(self, frames: int) -> tuple[int, int]:
        """(n_freq, n_time) patch grid for an input of `frames` fbank frames."""
        if frames < self.shape.patch:
            raise ValueError(f"AST needs at least {self.shape.patch} frames, got {frames}")
        return self.n_freq, (frames - self.shape.patch) // self.shape.stride + 1

    def _positions(self, n_time: int) -> torch.Tensor:
        """Positional embeddings (1, 2 + n_freq * n_time, D), the patch grid resized in time."""
        pos = self.ast.embeddings.position_embeddings
        if n_time == self.n_time_trained:
            return pos
        special, grid = pos[:, :2], pos[:, 2:]
        grid = grid.reshape(1, self.n_freq, self.n_time_trained, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(self.n_freq, n_time), mode="bilinear", align_corners=False)
        return torch.cat([special, grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        emb = self.ast.embeddings
        patches = emb.patch_embeddings(feats)  # (B, n_freq * n_time, D)
        _, n_time = self.grid(feats.shape[1])
        b = feats.shape[0]
        x = torch.cat([emb.cls_token.expand(b, -1, -1), emb.distillation_token.expand(b, -1, -1), patches], 1)
        x = x + self._positions(n_time)
        for layer in self.ast.layers:
            x = layer(x, None)
        return self.ast.layernorm(x)[:, 2:].reshape(b, self.n_freq, n_time, -1)  # tokens are frequency-major
