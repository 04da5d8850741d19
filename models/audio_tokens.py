"""How much audio one LM token stands for, importing nothing heavy (the report reads it without torch).

Every clip is padded (never cropped) to 1024 fbank frames per 10 s, as LTU pads 10 s clips, and
both projectors give one LM token per 32 of those frames: 32 tokens per 10 s of audio.
"""
from __future__ import annotations

PADDED_FRAMES_PER_10_S = 1024
FRAMES_PER_TOKEN = 32
TOKENS_PER_SECOND = PADDED_FRAMES_PER_10_S / FRAMES_PER_TOKEN / 10  # 3.2, before rounding up to whole blocks


def tokens_for_frames(frames: int) -> int:
    """LM audio tokens for `frames` padded fbank frames."""
    return frames // FRAMES_PER_TOKEN
