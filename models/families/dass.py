"""DASS, a VMamba-style state-space audio encoder, with ssLAM's convolutional projector.

Four cross-scan orders per VSS block run as channel groups of one selective scan: cost grows
linearly with the audio length.
"""
from __future__ import annotations

import math

import torch

from models.audio.fbank import NUM_MEL_BINS
from models.audio_tokens import tokens_for_frames
from models.closed_form import Costs, Op, add, conv, conv_out, linear, linear_params, norm_params
from models.encoders.dass import DIRECTIONS, DASSEncoder, DASSShape
from models.families.base import EncoderFamily
from models.ops.scan_flops import scan_backward_flops, scan_flops
from models.ops.selective_scan import resolve_backend
from models.projectors import ConvProjector

DASS_SMALL = DASSShape(widths=(96, 192, 384, 768), depths=(2, 2, 8, 2))
DASS_MEDIUM = DASSShape(widths=(96, 192, 384, 768), depths=(2, 2, 20, 2))


def dass_stage_sizes(frames: int) -> list[tuple[int, int]]:
    """(H, W) of the feature map in each of DASS's four stages (after the stem and downsamples)."""
    h, w = frames, NUM_MEL_BINS
    sizes = []
    for stage in range(4):
        for _ in range(2 if stage == 0 else 1):  # two stride-2 stem convs, then one per downsample
            h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        sizes.append((h, w))
    return sizes


def vss_block_flops(shape: DASSShape, dim: int, batch: int, length: int) -> Costs:
    """One VSS block over a (batch, H, W, dim) map with H * W = length."""
    d_inner, n = int(shape.ssm_ratio * dim), shape.d_state
    dt_rank, tokens = math.ceil(dim / 16), batch * length
    scan_channels = DIRECTIONS * d_inner  # the four cross-scan orders run as channel groups of one scan
    return {
        "ss2d.in_proj": linear(tokens, dim, d_inner),
        "ss2d.dwconv": conv(tokens, d_inner, 1, 9),
        "ss2d.x_proj": DIRECTIONS * linear(tokens, d_inner, dt_rank + 2 * n),
        "ss2d.dt_proj": DIRECTIONS * linear(tokens, dt_rank, d_inner),
        "ss2d.scan": scan_flops(batch, scan_channels, length, n, True, False, has_delta_bias=True, delta_softplus=True),
        "ss2d.out_proj": linear(tokens, d_inner, dim),
        "mlp": 2 * linear(tokens, dim, int(dim * shape.mlp_ratio)),
    }


def _first_conv(shape: DASSShape, batch: int, frames: int) -> int:
    """The stem's first conv (1 -> widths[0] / 2 channels, stride 2)."""
    h1, w1 = conv_out(frames, 3, 2, 1), conv_out(NUM_MEL_BINS, 3, 2, 1)
    return conv(batch * h1 * w1, shape.widths[0] // 2, 1, 9)


def _projector_grid(frames: int) -> tuple[int, int]:
    """(T/64, 2): the projector conv's output map over the encoder's (T/32, 4)."""
    h, w = dass_stage_sizes(frames)[-1]
    return conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)


class DASS(EncoderFamily):
    attention = False
    shapes = {
        "tiny": DASSShape(widths=(16, 32, 64, 64), depths=(1, 1, 1, 1)),
        "small": DASSShape(widths=(48, 96, 192, 384), depths=(1, 1, 3, 1)),
        "paper": DASS_SMALL,
        "matched": DASS_SMALL,
    }

    def build(self, shape: DASSShape, scan_backend: str) -> DASSEncoder:
        return DASSEncoder(shape, scan_backend=scan_backend)

    def build_projector(self, d_enc: int, d_lm: int) -> ConvProjector:
        return ConvProjector(d_enc, d_lm)

    def width(self, shape: DASSShape) -> int:
        return shape.widths[-1]

    def params(self, shape: DASSShape) -> int:
        """Stem, downsamples, VSS blocks, final norm."""
        w = shape.widths
        stem = ((9 * w[0] // 2 + w[0] // 2) + norm_params(w[0] // 2)
                + (9 * w[0] * (w[0] // 2) + w[0]) + norm_params(w[0]))
        downsample = sum(9 * w[i] * w[i - 1] + w[i] + norm_params(w[i]) for i in range(1, 4))
        blocks = 0
        for dim, depth in zip(w, shape.depths):
            d_inner, n, dt_rank = int(shape.ssm_ratio * dim), shape.d_state, math.ceil(dim / 16)
            hidden = int(dim * shape.mlp_ratio)
            ss2d = (
                dim * d_inner  # in_proj
                + 9 * d_inner + d_inner  # depthwise conv
                + DIRECTIONS * (dt_rank + 2 * n) * d_inner  # x_proj
                + DIRECTIONS * (d_inner * dt_rank + d_inner)  # dt_proj weights and biases
                + DIRECTIONS * d_inner * (n + 1)  # A_logs, Ds
                + norm_params(d_inner) + d_inner * dim  # out_norm, out_proj
            )
            mlp = linear_params(dim, hidden) + linear_params(hidden, dim)
            blocks += depth * (2 * norm_params(dim) + ss2d + mlp)
        return stem + downsample + blocks + norm_params(w[-1])

    def projector_params(self, d_enc: int, d_lm: int) -> int:
        return 9 * d_enc * d_enc + d_enc + linear_params(d_enc, d_lm)

    def flops(self, shape: DASSShape, batch: int, frames: int) -> Costs:
        """Stem convs, downsample convs, VSS blocks."""
        w = shape.widths
        sizes = dass_stage_sizes(frames)
        costs: Costs = {
            "stem": _first_conv(shape, batch, frames) + conv(batch * sizes[0][0] * sizes[0][1], w[0], w[0] // 2, 9),
            "downsample": sum(conv(batch * h * wd, w[i], w[i - 1], 9) for i, (h, wd) in enumerate(sizes) if i),
        }
        for dim, depth, (h, wd) in zip(w, shape.depths, sizes):
            costs = add(costs, *[vss_block_flops(shape, dim, batch, h * wd)] * depth)
        return costs

    def projector_flops(self, d_enc: int, d_lm: int, batch: int, frames: int) -> Costs:
        """A 3x3 stride-2 conv over the (T/32, 4) map, then one Linear per token."""
        out_h, out_w = _projector_grid(frames)
        return {"linear": linear(batch * tokens_for_frames(frames), d_enc, d_lm),
                "conv": conv(batch * out_h * out_w, d_enc, d_enc, 9)}

    def train_ops(self, shape: DASSShape, batch: int, frames: int) -> list[Op]:
        costs = self.flops(shape, batch, frames)
        first_conv = _first_conv(shape, batch, frames)
        scan_backward = sum(
            depth * scan_backward_flops(batch, DIRECTIONS * int(shape.ssm_ratio * dim), h * w, shape.d_state,
                                        False, True)
            for dim, depth, (h, w) in zip(shape.widths, shape.depths, dass_stage_sizes(frames))
        )
        ops = [
            Op("encoder", "stem.conv1", first_conv, first=True, recomputed=0.0),
            Op("encoder", "stem.conv2", costs["stem"] - first_conv, recomputed=0.0),
            Op("encoder", "downsample", costs["downsample"], recomputed=0.0),
            Op("encoder", "ss2d.scan", costs["ss2d.scan"], kind="scan", backward=scan_backward),
        ]
        block = ("ss2d.in_proj", "ss2d.dwconv", "ss2d.x_proj", "ss2d.dt_proj", "ss2d.out_proj")
        return ops + [Op("encoder", name, costs[name]) for name in block] + [
            Op("encoder", "mlp", costs["mlp"], recomputed=1 / 2)]  # the block ends with the MLP's second Linear

    def projector_train_ops(self, d_enc: int, d_lm: int, batch: int, frames: int) -> list[Op]:
        # ssLAM's projector starts with its conv, whose input is the encoder's output.
        costs = self.projector_flops(d_enc, d_lm, batch, frames)
        return [Op("projector", "linear", costs["linear"], recomputed=0.0),
                Op("projector", "conv", costs["conv"], first=True, recomputed=0.0)]

    def use_scan_backend(self, encoder: DASSEncoder, backend: str, device: torch.device) -> str:
        """DASS has no transformers implementation, so under 'hf' its scans run as 'auto'."""
        return resolve_backend("auto" if backend == "hf" else backend, device)

    def bytes_moved(self, shape: DASSShape, batch: int, frames: int, dtype: torch.dtype) -> Costs:
        """Weights read once; every convolution reads its input map and writes its output map; per
        token of a VSS block at width `dim`, elements: two LayerNorms (4 dim), in_proj (dim +
        d_inner), depthwise conv (2 d_inner), the four-way cross scan and its merge (10 d_inner),
        per direction x_proj (d_inner + dt_rank + 2n), dt_proj (dt_rank + d_inner) and the scan
        (3 d_inner + 2n), out_norm (2 d_inner), out_proj (d_inner + dim), MLP (dim in, hidden out,
        GELU 2 hidden, hidden in, dim out) and two residual adds (6 dim)."""
        w, sizes = shape.widths, dass_stage_sizes(frames)
        h1, w1 = conv_out(frames, 3, 2, 1), conv_out(NUM_MEL_BINS, 3, 2, 1)
        half = w[0] // 2
        maps = frames * NUM_MEL_BINS + 2 * h1 * w1 * half + sizes[0][0] * sizes[0][1] * w[0]  # the stem
        maps += sum(math.prod(sizes[i - 1]) * w[i - 1] + math.prod(sizes[i]) * w[i] for i in range(1, 4))
        blocks, a_logs = 0, 0
        for dim, depth, (h, wd) in zip(w, shape.depths, sizes):
            d_inner, dt_rank, hidden = int(shape.ssm_ratio * dim), math.ceil(dim / 16), int(dim * shape.mlp_ratio)
            scans = DIRECTIONS * (5 * d_inner + 2 * dt_rank + 4 * shape.d_state)
            per_token = 14 * dim + 15 * d_inner + scans + 4 * hidden
            blocks += depth * h * wd * per_token
            a_logs += depth * DIRECTIONS * d_inner * shape.d_state
        # A_logs stay float32 whatever the model's dtype (the scan's decay rates)
        weights = self.params(shape) * dtype.itemsize + a_logs * (torch.float32.itemsize - dtype.itemsize)
        return {"weights": weights, "activations": batch * (maps + blocks) * dtype.itemsize}

    def projector_bytes(self, shape: DASSShape, d_lm: int, batch: int, frames: int, dtype: torch.dtype) -> Costs:
        """Weights; the (T/32, 4) map in, the conv's (T/64, 2) map, one token per 32 frames out."""
        d_enc = shape.widths[-1]
        encoder_map, conv_map = math.prod(dass_stage_sizes(frames)[-1]), math.prod(_projector_grid(frames))
        activations = batch * (encoder_map * d_enc + 2 * conv_map * d_enc + tokens_for_frames(frames) * d_lm)
        return {"weights": self.projector_params(d_enc, d_lm) * dtype.itemsize,
                "activations": activations * dtype.itemsize}


FAMILY = DASS()
