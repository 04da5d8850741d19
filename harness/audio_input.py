"""An audio file named on the command line: checked, read and described in one place.

`read_clip` refuses, in one line naming the file, a clip longer than the user's limit (from the
header, before a sample is read: a 2-hour file would otherwise take minutes and many GB before
failing) or shorter than one fbank frame; it returns the 16 kHz mono waveform and the file's
`AudioInfo`. `conversion_note` is the one line that says a file was resampled or downmixed,
which the command prints to stderr (models never print). torch is imported on first use, so the
CLI's help stays fast.
"""
from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import InputError

if TYPE_CHECKING:
    from torch import Tensor

    from models.audio import AudioInfo

# 1 h: a mistaken file (hours of audio) is refused before it exhausts an ordinary machine's
# memory, while the tiny and small models still run this long a clip in a common workstation's
# memory (dass+mamba, the hungrier, is forecast at 3.9 and 10.8 GiB of tensors by
# `harness.forecast`); every clip of a minute or more is told its forecast before it runs.
DEFAULT_MAX_AUDIO_SECONDS = 3600.0


def add_max_audio_seconds_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-audio-seconds", type=float, default=DEFAULT_MAX_AUDIO_SECONDS,
        help=f"refuse longer audio files (default {DEFAULT_MAX_AUDIO_SECONDS:g} s); memory and time grow with length",
    )


def read_clip(path: str, max_seconds: float) -> tuple[Tensor, AudioInfo]:
    """The file as one 16 kHz mono channel, float32 (S,), and what the file was.

    Raises InputError naming the file when it is unreadable, longer than `max_seconds` or too
    short for one fbank frame.
    """
    from models.audio import SAMPLE_RATE, load_audio, probe_wav
    from models.audio.fbank import FRAME_LENGTH_MS, frame_sizes

    if not max_seconds > 0:
        raise InputError(f"--max-audio-seconds must be positive, got {max_seconds:g}")
    info = probe_wav(path)
    if info.seconds > max_seconds:
        raise InputError(
            f"{path}: {info.seconds:.1f} s of audio is more than --max-audio-seconds {max_seconds:g}; "
            "raise the limit to run it (memory and time grow with length)"
        )
    min_samples = frame_sizes(SAMPLE_RATE)[0]
    if math.ceil(info.num_samples * SAMPLE_RATE / info.sample_rate) < min_samples:
        raise InputError(
            f"{path}: {info.seconds * 1e3:.1f} ms of audio is too short; the fbank needs at least "
            f"{FRAME_LENGTH_MS:g} ms (one frame)"
        )
    return load_audio(path), info


def _changes(sample_rate: int, channels: int) -> list[str]:
    from models.audio import SAMPLE_RATE

    changes = []
    if sample_rate != SAMPLE_RATE:
        changes.append(f"resampled to {SAMPLE_RATE} Hz")
    if channels > 1:
        changes.append("downmixed to mono")
    return changes


def conversion_note(info: AudioInfo) -> str | None:
    """'FILE: 8000 Hz stereo (16-bit PCM) resampled to 16000 Hz and downmixed to mono (the mean of
    2 channels)', or None when the file is 16 kHz mono."""
    changes = _changes(info.sample_rate, info.channels)
    if not changes:
        return None
    layout = {1: "mono", 2: "stereo"}.get(info.channels, f"{info.channels} channels")
    mean = f" (the mean of {info.channels} channels)" if info.channels > 1 else ""
    return f"{info.path}: {info.sample_rate} Hz {layout} ({info.encoding}) {' and '.join(changes)}{mean}"


def dataset_conversion_note(root: Path, paths: Iterable[Path]) -> str | None:
    """One line for a whole dataset: how many of its files are resampled or downmixed, and from what.

    Reads headers only; a file that cannot be read is left to the loader, which skips and counts it.
    """
    from models.audio import SAMPLE_RATE, probe_wav

    formats: Counter[tuple[int, int]] = Counter()
    for path in set(paths):
        try:
            info = probe_wav(path)
        except InputError:
            continue
        formats[info.sample_rate, info.channels] += 1
    converted = {fmt: n for fmt, n in formats.items() if _changes(*fmt)}
    if not converted:
        return None
    kinds = ", ".join(f"{n} at {rate} Hz with {channels} channel(s)"
                      for (rate, channels), n in sorted(converted.items()))
    return (f"{root}: {sum(converted.values())} of {sum(formats.values())} audio files are "
            f"converted to {SAMPLE_RATE} Hz mono ({kinds})")
