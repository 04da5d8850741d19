"""Band-limited sample-rate conversion in torch: a Kaiser-windowed sinc applied polyphase.

With the rates reduced to ``orig`` input samples per ``new`` output samples, every block of
``orig`` inputs yields ``new`` outputs, and output phase j sits at the same fractional input
position in every block. So one strided conv1d with ``new`` kernels (one per phase) does the
whole conversion. The low-pass cutoff sits below the lower of the two Nyquist frequencies, so
downsampling does not alias and upsampling leaves no spectral images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from models.errors import InputError

# 32 sinc zero crossings each side with a Kaiser beta of 8.6 give 80-90 dB of stop band
# and a transition band of roughly +-8% around the cutoff; a cutoff of 0.92 x Nyquist then
# puts the stop band just below Nyquist (passband flat to ~0.85 x Nyquist).
ZERO_CROSSINGS = 32
KAISER_BETA = 8.6
ROLLOFF = 0.92
# Rates that share no common factor need one kernel per output sample of a long block;
# beyond this many kernel weights, conversion is refused rather than exhausting memory.
MAX_KERNEL_WEIGHTS = 1 << 24


def _cutoff(orig: int, new: int) -> float:
    """Low-pass cutoff as a fraction of the input Nyquist frequency."""
    return ROLLOFF * min(orig, new) / orig


def _half_width(orig: int, new: int) -> int:
    """Kernel half-width in input samples: ZERO_CROSSINGS sinc lobes at the cutoff."""
    return math.ceil(ZERO_CROSSINGS / _cutoff(orig, new))


def _polyphase_kernels(orig: int, new: int) -> Tensor:
    """One low-pass kernel per output phase, (new, 1, 2 * half + orig), float64."""
    cutoff, half = _cutoff(orig, new), _half_width(orig, new)
    taps = torch.arange(-half, half + orig, dtype=torch.float64)  # input offsets within a block
    phases = torch.arange(new, dtype=torch.float64).unsqueeze(1) * orig / new  # output positions
    distance = phases - taps  # (new, taps), in input samples
    inside = (distance / half).clamp(-1.0, 1.0)
    window = torch.special.i0(KAISER_BETA * (1 - inside.square()).sqrt()) / torch.special.i0(
        torch.tensor(KAISER_BETA, dtype=torch.float64)
    )
    window = torch.where(distance.abs() <= half, window, torch.zeros_like(window))
    # cutoff * sinc(cutoff * t) has unit DC gain when summed over integer t.
    kernels = cutoff * torch.sinc(cutoff * distance) * window
    return kernels.unsqueeze(1)


def resample(wave: Tensor, orig_sr: int, target_sr: int) -> Tensor:
    """Resample along the last axis: (..., S) at ``orig_sr`` -> (..., ceil(S * target_sr / orig_sr)).

    Output sample n is the band-limited interpolation of the input at time n / target_sr.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise InputError(f"cannot resample from {orig_sr} Hz to {target_sr} Hz: rates must be positive")
    if orig_sr == target_sr:
        return wave
    common = math.gcd(orig_sr, target_sr)
    orig, new = orig_sr // common, target_sr // common
    half = _half_width(orig, new)
    if new * (2 * half + orig) > MAX_KERNEL_WEIGHTS:
        raise InputError(
            f"cannot resample from {orig_sr} Hz to {target_sr} Hz: the rates share too small a common factor"
        )
    kernels = _polyphase_kernels(orig, new)
    *leading, num_samples = wave.shape
    signal = wave.reshape(-1, 1, num_samples)
    signal = F.pad(signal, (half, half + orig))
    blocks = F.conv1d(signal, kernels.to(signal.dtype).to(signal.device), stride=orig)  # (N, new, blocks)
    out = blocks.transpose(1, 2).reshape(signal.shape[0], -1)  # output n = block * new + phase
    length = math.ceil(num_samples * new / orig)
    return out[:, :length].reshape(*leading, length)
