"""DASS: a VMamba-style state-space audio encoder (Bhati et al. 2024).

The spectrogram is treated as a 2D map (time x frequency) and processed by a four-stage
hierarchy of VSS blocks. Each VSS block's SS2D mixer flattens the map in four orders
(row-major, column-major, and both reversed), runs one selective scan over all four as
channel groups, and merges the four outputs back onto the map. With no positional embedding,
any input length works and cost grows linearly with it.

Shapes (input fbank (B, T, 128), T a multiple of 32):
    stem      -> (B, T/4,  32, w0)
    stage i   -> (B, T/2^(i+2), 128/2^(i+2), w_i)   (stages 1..3 entered by a stride-2 conv)
    output    -> (B, T/32, 4, w3)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.selective_scan import selective_scan

DIRECTIONS = 4  # the cross scan's four flattening orders


@dataclass(frozen=True)
class DASSShape:
    widths: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    d_state: int = 1
    ssm_ratio: float = 1.0
    mlp_ratio: float = 4.0


class ChannelsLastNorm(nn.LayerNorm):
    """LayerNorm over C of a (B, C, H, W) map, returning (B, H, W, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1))


def cross_scan(x: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W) -> (B, 4, D, H*W): row-major, column-major, and each reversed."""
    rows = x.flatten(2)
    cols = x.transpose(2, 3).flatten(2)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)


def cross_merge(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 4, D, H*W) -> (B, D, H*W): undo each order of `cross_scan` and sum."""
    rows = y[:, 0] + y[:, 2].flip(-1)
    cols = y[:, 1] + y[:, 3].flip(-1)
    b, d, _ = cols.shape
    return rows + cols.reshape(b, d, w, h).transpose(2, 3).reshape(b, d, h * w)


class SS2D(nn.Module):
    """2D selective-scan mixer: (B, H, W, C) -> (B, H, W, C).

    in_proj -> 3x3 depthwise conv -> SiLU -> cross scan -> selective scan (4 direction groups,
    input-dependent dt, B, C; d_state=1 in DASS) -> cross merge -> LayerNorm -> out_proj.
    """

    def __init__(self, d_model: int, d_state: int = 1, ssm_ratio: float = 1.0, scan_backend: str = "auto"):
        super().__init__()
        d_inner = int(ssm_ratio * d_model)
        self.d_inner, self.d_state = d_inner, d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.scan_backend = scan_backend
        k = DIRECTIONS
        self.in_proj = nn.Linear(d_model, d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, 3, padding=1, groups=d_inner)
        self.x_proj_weight = nn.Parameter(torch.randn(k, self.dt_rank + 2 * d_state, d_inner) * d_inner**-0.5)
        self.dt_projs_weight = nn.Parameter(torch.randn(k, d_inner, self.dt_rank) * self.dt_rank**-0.5)
        # Mamba's dt initialisation: softplus(bias) spread log-uniformly over [1e-3, 1e-1].
        dt = torch.exp(torch.rand(k, d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_projs_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(k * d_inner, 1)
        self.A_logs = nn.Parameter(torch.log(a))  # (4 * d_inner, d_state)
        self.Ds = nn.Parameter(torch.ones(k * d_inner))
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        k, d, n, r, length = DIRECTIONS, self.d_inner, self.d_state, self.dt_rank, h * w
        x = self.in_proj(x).permute(0, 3, 1, 2)
        x = F.silu(self.conv2d(x))
        xs = cross_scan(x)  # (B, 4, D, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        y = selective_scan(
            xs.reshape(b, k * d, length),
            dts.reshape(b, k * d, length),
            -torch.exp(self.A_logs.float()),
            bs.contiguous(),  # (B, 4, N, L): one B per direction group
            cs.contiguous(),
            self.Ds.float(),
            delta_bias=self.dt_projs_bias.reshape(-1).float(),
            delta_softplus=True,
            backend=self.scan_backend,
        )
        y = cross_merge(y.reshape(b, k, d, length), h, w)  # (B, D, L)
        y = self.out_norm(y.transpose(1, 2)).reshape(b, h, w, d)
        return self.out_proj(y)


class VSSBlock(nn.Module):
    """Pre-norm residual block: x + SS2D(LN(x)), then x + MLP(LN(x)). (B, H, W, C) in and out."""

    def __init__(self, dim: int, shape: DASSShape, scan_backend: str):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.op = SS2D(dim, shape.d_state, shape.ssm_ratio, scan_backend)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * shape.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.op(self.norm(x))
        return x + self.mlp(self.norm2(x))


class Downsample(nn.Module):
    """3x3 stride-2 conv: (B, H, W, C) -> (B, H/2, W/2, C_out), then LayerNorm."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, out, 3, stride=2, padding=1)
        self.norm = ChannelsLastNorm(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))


class DASSEncoder(nn.Module):
    """fbank (B, T, 128) -> feature map (B, T/32, 4, widths[-1]); T must be a multiple of 32."""

    downsampling = 32

    def __init__(self, shape: DASSShape, scan_backend: str = "auto"):
        super().__init__()
        self.shape = shape
        w = shape.widths
        self.stem = nn.Sequential(
            nn.Conv2d(1, w[0] // 2, 3, stride=2, padding=1),
            ChannelsLastNorm(w[0] // 2),
            _ToChannelsFirst(),
            nn.GELU(),
            nn.Conv2d(w[0] // 2, w[0], 3, stride=2, padding=1),
            ChannelsLastNorm(w[0]),
        )
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(w, shape.depths)):
            blocks = [Downsample(w[i - 1], dim)] if i else []
            blocks += [VSSBlock(dim, shape, scan_backend) for _ in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
        self.norm = nn.LayerNorm(w[-1])

    @property
    def width(self) -> int:
        return self.shape.widths[-1]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.shape[1] % self.downsampling:
            raise ValueError(f"DASS needs a frame count divisible by 32, got {feats.shape[1]}")
        x = self.stem(feats.unsqueeze(1))
        for stage in self.stages:
            x = stage(x)
        return self.norm(x)


class _ToChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)
