"""Write tests/data/fbank_golden.npz: reference log-mel features from torchaudio's Kaldi fbank.

The project never depends on torchaudio; this script is run by hand, once, in a throwaway
environment, and its output is committed. Tests compare ``models.audio.fbank`` against it.

    python3 -m venv /tmp/ta
    /tmp/ta/bin/pip install numpy torch==2.13.0
    /tmp/ta/bin/pip install --no-deps torchaudio==2.11.0
    # torchaudio's compiled extension need not match this torch; the Kaldi code is pure Python:
    rm -rf "$(/tmp/ta/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/torchaudio/lib"
    /tmp/ta/bin/python scripts/make_fbank_golden.py

The signals are linear chirps plus seeded noise, quantised to 16 bits as a WAV file would be.
They are stored with the features (as int16), so the test does not depend on numpy's random
streams staying the same across versions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio
from torchaudio.compliance import kaldi

SAMPLE_RATE = 16000
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "fbank_golden.npz"
# (name, seconds, seed): one signal shorter and one not a whole number of frames long.
SIGNALS = [("1.00s", 1.0, 0), ("2.37s", 2.37, 1)]
WINDOWS = ["hanning", "povey"]


def make_signal(seconds: float, seed: int) -> np.ndarray:
    """A 100 Hz -> 7.5 kHz linear chirp over pink and white noise, as int16 samples.

    The pink noise gives every mel bin real energy, as speech and music do; over white noise
    alone the pre-emphasised low bins sit near float32 FFT rounding noise, which differs
    between FFT libraries and would test rounding rather than the algorithm.
    """
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    sweep_rate = (7500.0 - 100.0) / seconds
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 * t + 0.5 * sweep_rate * t**2))
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(t.size, 1 / SAMPLE_RATE)
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(t.size)) / np.sqrt(np.maximum(freqs, 50.0)), n=t.size)
    noise = 0.05 * pink / pink.std() + 0.005 * rng.standard_normal(t.size)
    return np.round(np.clip(chirp + noise, -1.0, 1.0) * 32767).astype(np.int16)


def reference_fbank(samples: np.ndarray, window_type: str) -> np.ndarray:
    """Features (frames, 128) exactly as AST/LTU compute them, apart from the window choice."""
    wave = torch.from_numpy(samples.astype(np.float32) / 32768.0).unsqueeze(0)
    feats = kaldi.fbank(
        wave,
        htk_compat=True,
        sample_frequency=SAMPLE_RATE,
        use_energy=False,
        window_type=window_type,
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    return feats.numpy().astype(np.float32)


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, seconds, seed in SIGNALS:
        samples = make_signal(seconds, seed)
        arrays[f"wave_{name}"] = samples
        for window_type in WINDOWS:
            arrays[f"{window_type}_{name}"] = reference_fbank(samples, window_type)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB) with torch {torch.__version__}, "
          f"torchaudio {torchaudio.__version__}: {', '.join(sorted(arrays))}")


if __name__ == "__main__":
    main()
