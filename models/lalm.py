"""The LALM: waveform -> fbank -> encoder -> projector -> LM, with each phase callable alone.

Audio tokens go before the prompt's text embeddings; generation is greedy. Every clip is
padded (never cropped) to 1024 fbank frames per 10 s of audio, rounded up to a multiple of 64
frames (the encoders' x32 downsampling times the projector's x2), as LTU pads 10 s to 1024
frames. So both projectors give exactly 32 LM tokens per 10 s of audio (320 per 100 s).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.audio import SAMPLE_RATE, Fbank, normalize
from models.audio_tokens import PADDED_FRAMES_PER_10_S, tokens_for_frames
from models.lms import CausalLM
from models.state import state_bytes

FRAME_MULTIPLE = 64
SAMPLES_PER_FRAME_BLOCK = SAMPLE_RATE * 10 * FRAME_MULTIPLE // PADDED_FRAMES_PER_10_S  # 10,000 samples per 64 frames


def padded_frames(num_samples: int) -> int:
    """Fbank frames a clip of `num_samples` is padded to (1024 per 10 s, a multiple of 64)."""
    return FRAME_MULTIPLE * max(1, math.ceil(num_samples / SAMPLES_PER_FRAME_BLOCK))


def num_audio_tokens(audio_seconds: float) -> int:
    """LM audio tokens for a clip: 32 per 10 s of its padded frames."""
    return tokens_for_frames(padded_frames(round(audio_seconds * SAMPLE_RATE)))


@dataclass(frozen=True)
class ModelSpec:
    variant: str  # "ENCODER+LM"
    encoder: str  # an encoder family's name (models.families.ENCODERS)
    lm: str  # an LM family's name (models.families.LMS)
    size: str


@dataclass
class AudioEncoding:
    """Encoder output plus the number of LM audio tokens it stands for."""

    hidden: torch.Tensor  # the projector's input, e.g. AST: (B, n_freq, n_time, D); DASS: (B, T/32, 4, D)
    num_tokens: int


class LALM(nn.Module):
    """One interface for every variant. The harness times each method as one phase."""

    def __init__(self, spec: ModelSpec, frontend: Fbank, encoder: nn.Module, projector: nn.Module, lm: CausalLM):
        super().__init__()
        self.spec = spec
        self.frontend = frontend
        self.encoder = encoder
        self.projector = projector
        self.lm = lm

    @property
    def scan_backend(self) -> str:
        """The selective-scan backend the SSM parts use ("" when the variant has none)."""
        return getattr(self, "_scan_backend", "")

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.lm.parameters()).dtype

    num_audio_tokens = staticmethod(num_audio_tokens)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (B, S) at 16 kHz -> normalised log-mel fbank (B, padded_frames(S), 128)."""
        feats = normalize(self.frontend(wave.float()))
        pad = padded_frames(wave.shape[-1]) - feats.shape[1]
        return F.pad(feats, (0, 0, 0, pad)).to(self.dtype)

    def encode(self, feats: torch.Tensor) -> AudioEncoding:
        """fbank (B, T, 128), T a multiple of 64 -> encoder output for T/32 audio tokens."""
        return AudioEncoding(self.encoder(feats), tokens_for_frames(feats.shape[1]))

    def audio_embeds(self, enc: AudioEncoding) -> torch.Tensor:
        """Projector: encoder output -> (B, num_tokens, d_lm)."""
        return self.projector(enc.hidden, enc.num_tokens)

    def input_embeds(self, enc: AudioEncoding, ids: torch.Tensor) -> torch.Tensor:
        """[audio tokens; embeddings of ids (B, L)] -> (B, num_tokens + L, d_lm)."""
        return torch.cat([self.audio_embeds(enc), self.lm.embed(ids)], dim=1)

    def prefill(self, enc: AudioEncoding, prompt_ids: torch.Tensor) -> tuple[torch.Tensor, object]:
        """Projector + LM over [audio; prompt (B, P)] -> (next-token logits (B, vocab), cache)."""
        return self.lm.prefill(self.input_embeds(enc, prompt_ids))

    def decode_step(self, cache: object, token: torch.Tensor) -> tuple[torch.Tensor, object]:
        """One generated token (B,) -> (next-token logits (B, vocab), cache). Mutates `cache`."""
        return self.lm.step(token, cache)

    @torch.inference_mode()
    def generate(self, wave: torch.Tensor, prompt_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding of exactly `max_new_tokens` tokens: (B, S), (B, P) -> (B, max_new_tokens)."""
        logits, cache = self.prefill(self.encode(self.features(wave)), prompt_ids)
        tokens = [logits.argmax(-1)]
        for _ in range(max_new_tokens - 1):
            logits, cache = self.decode_step(cache, tokens[-1])
            tokens.append(logits.argmax(-1))
        return torch.stack(tokens, dim=1)

    def forward(self, feats: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, num_tokens + L, vocab) over [audio; ids] — training and checks."""
        return self.lm.logits(self.input_embeds(self.encode(feats), ids))

    def state_bytes(self, cache: object) -> int:
        """Bytes held by the LM's cache (KV for LLaMA, conv + SSM state for Mamba), each storage once."""
        return state_bytes(cache)

