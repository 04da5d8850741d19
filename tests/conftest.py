"""Shared fixtures: deterministic waveforms and WAV files made by the tests themselves."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

SAMPLE_RATE = 16000


def make_wave(seconds: float, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """(batch, samples) of a chirp plus noise, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SAMPLE_RATE)
    t = torch.arange(n) / SAMPLE_RATE
    chirp = 0.3 * torch.sin(2 * torch.pi * (200 + 1500 * t) * t)
    return (chirp + 0.05 * torch.randn(batch, n, generator=g)).clamp(-1, 1)


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, width: int = 2, channels: int = 1) -> Path:
    """Write PCM samples (float in [-1, 1], shape (n,) or (n, channels)) as a WAV file."""
    scale = {1: 127, 2: 32767, 4: 2**31 - 1}[width]
    dtype = {1: np.uint8, 2: "<i2", 4: "<i4"}[width]
    data = np.round(np.asarray(samples) * scale)
    data = (data + 128).astype(dtype) if width == 1 else data.astype(dtype)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(data.tobytes())
    return path


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny models train fastest so, more only contend for a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "clip.wav", make_wave(1.0)[0].numpy())


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests without CUDA, so `pytest -m gpu` on a CPU machine says why."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
