"""Reading integer-PCM WAV files with the standard library, and turning them into model input.

``load_wav`` returns the file as it is (channels, samples) in [-1, 1]; ``load_audio`` returns
what the front end wants: one 16 kHz mono channel. Every problem with the file is an
``InputError`` whose one-line message starts with the path.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.audio.fbank import SAMPLE_RATE
from models.audio.resample import resample
from models.errors import InputError


def _decode_pcm(data: bytes, sample_width: int) -> np.ndarray:
    """Little-endian integer PCM bytes -> float32 samples in [-1, 1)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if sample_width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (raw.astype(np.float32) - 128.0) / 128.0
    if sample_width == 3:  # no numpy dtype: place each 3-byte sample in the top of an int32
        wide = np.zeros((raw.size // 3, 4), dtype=np.uint8)
        wide[:, 1:] = raw.reshape(-1, 3)
        return wide.view("<i4").ravel().astype(np.float32) / 2.0**31
    integers = np.frombuffer(data, dtype=f"<i{sample_width}")
    return integers.astype(np.float32) / float(2 ** (8 * sample_width - 1))


def _check_riff_wave(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    with path.open("rb") as handle:
        header = handle.read(12)
    if not header:
        raise InputError(f"{path}: the audio file is empty")
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise InputError(f"{path}: not a RIFF/WAVE file")


def load_wav(path: str | Path) -> tuple[Tensor, int]:
    """Read an 8/16/24/32-bit integer PCM WAV file.

    Returns (waveform, sample_rate): waveform is float32 (channels, samples) in [-1, 1].
    """
    path = Path(path)
    _check_riff_wave(path)
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            data = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as err:
        # The wave module reads only uncompressed integer PCM; anything else fails here.
        raise InputError(f"{path}: unsupported or damaged WAV ({err}); only integer PCM is read") from None
    if width not in (1, 2, 3, 4):
        raise InputError(f"{path}: unsupported sample width of {width} bytes; expected 1, 2, 3 or 4")
    num_samples = len(data) // (width * channels)
    if num_samples == 0:
        raise InputError(f"{path}: the WAV file holds zero samples")
    samples = _decode_pcm(data[: num_samples * width * channels], width)
    return torch.from_numpy(samples.reshape(num_samples, channels).T.copy()), rate


def load_audio(path: str | Path, target_sr: int = SAMPLE_RATE) -> Tensor:
    """Read a WAV file as one mono channel at ``target_sr``: float32 (samples,).

    Channels are averaged, then resampled with a band-limited (anti-aliased) filter.
    """
    waveform, rate = load_wav(path)
    try:
        return resample(waveform.mean(dim=0), rate, target_sr)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
