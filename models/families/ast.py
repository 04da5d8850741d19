"""AST, the Audio Spectrogram Transformer, with LTU's pooling projector.

Attention over every patch of the spectrogram: its cost grows with the square of the audio length.
"""
from __future__ import annotations

import torch

from models.audio.fbank import NUM_MEL_BINS
from models.audio_tokens import tokens_for_frames
from models.closed_form import Costs, Op, attention, conv, conv_out, linear, linear_params, norm_params
from models.encoders.ast import ASTEncoder, ASTShape
from models.families.base import EncoderFamily
from models.projectors import PoolProjector

AST_BASE = ASTShape(hidden=768, layers=12, heads=12, mlp=3072)


def ast_grid(shape: ASTShape, frames: int) -> tuple[int, int]:
    """(n_freq, n_time) patch grid of AST over `frames` x 128 fbank."""
    return conv_out(NUM_MEL_BINS, shape.patch, shape.stride, 0), conv_out(frames, shape.patch, shape.stride, 0)


class AST(EncoderFamily):
    attention = True
    shapes = {
        "tiny": ASTShape(hidden=64, layers=2, heads=2, mlp=128, max_frames=128),
        "small": ASTShape(hidden=384, layers=4, heads=6, mlp=1536),
        "paper": AST_BASE,
        "matched": AST_BASE,
    }

    def build(self, shape: ASTShape, scan_backend: str) -> ASTEncoder:
        return ASTEncoder(shape)

    def build_projector(self, d_enc: int, d_lm: int) -> PoolProjector:
        return PoolProjector(d_enc, d_lm)

    def weights_module(self, encoder: ASTEncoder) -> torch.nn.Module:
        return encoder.ast  # transformers' ASTModel: AST checkpoints' names

    def width(self, shape: ASTShape) -> int:
        return shape.hidden

    def params(self, shape: ASTShape) -> int:
        """`transformers.ASTModel` with this shape (patch conv, 2 summary tokens, positions, layers, final norm)."""
        d = shape.hidden
        n_freq, n_time = ast_grid(shape, shape.max_frames)
        embeddings = d * shape.patch**2 + d + 2 * d + (2 + n_freq * n_time) * d
        layer = 4 * linear_params(d, d) + linear_params(d, shape.mlp) + linear_params(shape.mlp, d) + 2 * norm_params(d)
        return embeddings + shape.layers * layer + norm_params(d)

    def projector_params(self, d_enc: int, d_lm: int) -> int:
        return norm_params(d_enc) + linear_params(d_enc, d_lm)

    def flops(self, shape: ASTShape, batch: int, frames: int) -> Costs:
        """Patch conv, then per layer q/k/v/o, attention, MLP. Tokens: 2 summary tokens + n_freq *
        n_time patches (the summary tokens are dropped only at the end)."""
        n_freq, n_time = ast_grid(shape, frames)
        seq, d = 2 + n_freq * n_time, shape.hidden
        tokens = batch * seq
        return {
            "patch_embed": conv(batch * n_freq * n_time, d, 1, shape.patch**2),
            "attn_proj": shape.layers * 4 * linear(tokens, d, d),
            "attn_scores": shape.layers * attention(batch, shape.heads, seq, seq, d // shape.heads),
            "mlp": shape.layers * 2 * linear(tokens, d, shape.mlp),
        }

    def projector_flops(self, d_enc: int, d_lm: int, batch: int, frames: int) -> Costs:
        """Mean over frequency and pooling in time (not counted), then one Linear per token."""
        return {"linear": linear(batch * tokens_for_frames(frames), d_enc, d_lm)}

    def train_ops(self, shape: ASTShape, batch: int, frames: int) -> list[Op]:
        costs = self.flops(shape, batch, frames)
        return [
            Op("encoder", "patch_embed", costs["patch_embed"], first=True, recomputed=0.0),
            Op("encoder", "attn_proj", costs["attn_proj"]),
            Op("encoder", "attn_scores", costs["attn_scores"], kind="attention"),
            Op("encoder", "mlp", costs["mlp"], recomputed=1 / 2),  # fc1 and fc2 cost the same; fc2 is last
        ]

    def projector_train_ops(self, d_enc: int, d_lm: int, batch: int, frames: int) -> list[Op]:
        # LTU's projector normalises (a LayerNorm with weights) before its Linear.
        return [Op("projector", "linear", self.projector_flops(d_enc, d_lm, batch, frames)["linear"], recomputed=0.0)]

    def bytes_moved(self, shape: ASTShape, batch: int, frames: int, dtype: torch.dtype) -> Costs:
        """Weights read once; activations: the fbank in, the patch embeddings out, and per token and
        layer two LayerNorms (4d), q/k/v (3d in, 3d out), attention (3d in, d out), o_proj (2d), two
        residual adds (6d), MLP (d in, mlp out, GELU 2 mlp, mlp in, d out)."""
        n_freq, n_time = ast_grid(shape, frames)
        d, tokens = shape.hidden, batch * (2 + n_freq * n_time)
        activations = batch * frames * NUM_MEL_BINS + tokens * (d + shape.layers * (24 * d + 4 * shape.mlp))
        return {"weights": self.params(shape) * dtype.itemsize, "activations": activations * dtype.itemsize}

    def projector_bytes(self, shape: ASTShape, d_lm: int, batch: int, frames: int, dtype: torch.dtype) -> Costs:
        """Weights; the patch grid in, one token per 32 frames out."""
        n_freq, n_time = ast_grid(shape, frames)
        d_enc = shape.hidden
        activations = batch * (n_freq * n_time * d_enc + tokens_for_frames(frames) * d_lm)
        return {"weights": self.projector_params(d_enc, d_lm) * dtype.itemsize,
                "activations": activations * dtype.itemsize}


FAMILY = AST()
