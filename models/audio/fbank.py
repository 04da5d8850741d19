"""Kaldi-compatible log-mel filterbank features, in torch only, batched, on any device.

Equal (to float32 rounding) to ``torchaudio.compliance.kaldi.fbank`` called the way AST and
LTU call it: 128 mel bins, 25 ms frames every 10 ms, 'hanning' window (Kaldi's default
'povey' also supported), pre-emphasis 0.97, per-frame DC removal, no dither, snip_edges,
no energy column, power spectrum, log, FFT size rounded up to a power of two.
The project never depends on torchaudio; ``tests/data/fbank_golden.npz`` pins the equality.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.errors import InputError

SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100
NUM_MEL_BINS = 128
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0

# AudioSet statistics of these features, used by AST/LTU to normalise their input.
AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974

WINDOW_TYPES = ("hanning", "povey")


def frame_sizes(sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
    """(frame length, frame shift) in samples; Kaldi truncates the millisecond products."""
    return int(sample_rate * FRAME_LENGTH_MS / 1000), int(sample_rate * FRAME_SHIFT_MS / 1000)


def num_frames(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Frames that fit entirely in the signal (Kaldi's snip_edges): 1 + (S - 400) // 160 at 16 kHz."""
    length, shift = frame_sizes(sample_rate)
    return 0 if num_samples < length else 1 + (num_samples - length) // shift


def feature_window(window_type: str, length: int) -> Tensor:
    """The analysis window, shape (length,), float32.

    'hanning' is the symmetric Hann window; 'povey' is Hann raised to 0.85, which reaches
    zero at the edges like Hann but is flatter in the middle.
    """
    if window_type not in WINDOW_TYPES:
        raise InputError(f"fbank window_type {window_type!r} is not one of {', '.join(WINDOW_TYPES)}")
    hann = torch.hann_window(length, periodic=False)
    return hann if window_type == "hanning" else hann.pow(0.85)


def _mel(freq_hz: Tensor) -> Tensor:
    return 1127.0 * (1.0 + freq_hz / 700.0).log()


def mel_matrix(num_mel_bins: int, n_fft: int, sample_rate: int, low_freq: float, high_freq: float) -> Tensor:
    """Triangular mel filters as a projection matrix, shape (n_fft // 2 + 1, num_mel_bins), float32.

    Filters are evenly spaced on Kaldi's mel scale between low_freq and high_freq (<= 0 means
    that much below Nyquist) and are triangles in mel, not in Hz. The Nyquist row is zero, as
    in Kaldi. Built in float32 with Kaldi's arithmetic so the weights match Kaldi's to the bit:
    a low mel bin fed by one tiny weight would otherwise drift by ~1e-4 in the log domain.
    """
    nyquist = sample_rate / 2
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if not 0 <= low_freq < high <= nyquist:
        raise InputError(f"fbank band {low_freq}..{high} Hz does not fit in 0..{nyquist} Hz")
    mel_low, mel_high = _mel(torch.tensor([low_freq, high], dtype=torch.float64)).tolist()
    mel_step = (mel_high - mel_low) / (num_mel_bins + 1)
    bins = torch.arange(num_mel_bins, dtype=torch.float32)
    left, center, right = (mel_low + (bins + offset) * mel_step for offset in (0.0, 1.0, 2.0))
    bin_mel = _mel(torch.arange(n_fft // 2, dtype=torch.float32) * (sample_rate / n_fft)).unsqueeze(1)
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    filters = torch.minimum(rising, falling).clamp_min(0.0)  # (n_fft // 2, num_mel_bins)
    return torch.cat([filters, filters.new_zeros(1, num_mel_bins)])


class Fbank(nn.Module):
    """Waveform (B, S) or (S,) at ``sample_rate`` -> log-mel features (B, T, M) or (T, M).

    M = num_mel_bins (128) and T = 1 + (S - 400) // 160 at 16 kHz (``num_frames``). The window and the mel matrix are
    buffers built once, so the forward pass is framing, a few element-wise ops, one rfft and
    one matmul. Computes in float32 (float64 for float64 input) and keeps its tables in
    float32 even when the model around it is cast to half precision: half-precision FFTs and
    logs would lose Kaldi equality. Cast the output to the encoder's dtype.
    """

    def __init__(
        self,
        num_mel_bins: int = NUM_MEL_BINS,
        window_type: str = "hanning",
        dither: float = 0.0,
        preemphasis: float = 0.97,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__()
        self.frame_length, self.frame_shift = frame_sizes(sample_rate)
        self.n_fft = 1 << (self.frame_length - 1).bit_length()
        self.dither = dither
        self.preemphasis = preemphasis
        self.sample_rate = sample_rate
        self._table_options = (window_type, num_mel_bins, low_freq, high_freq)
        window, mel = self._tables(torch.device("cpu"))
        # Not persistent: they are derived from the arguments, so checkpoints need not carry them.
        self.register_buffer("window", window, persistent=False)  # (frame_length,)
        self.register_buffer("mel", mel, persistent=False)  # (n_fft // 2 + 1, num_mel_bins)

    def _tables(self, device: torch.device) -> tuple[Tensor, Tensor]:
        window_type, num_mel_bins, low_freq, high_freq = self._table_options
        window = feature_window(window_type, self.frame_length)
        mel = mel_matrix(num_mel_bins, self.n_fft, self.sample_rate, low_freq, high_freq)
        return window.to(device), mel.to(device)

    def _apply(self, fn, recurse=True):
        # model.half() or .to(torch.bfloat16) on the whole LALM would round the tables and
        # break Kaldi equality; rebuild them in float32 on whatever device they moved to.
        super()._apply(fn, recurse)
        if self.window.dtype != torch.float32:
            self.window, self.mel = self._tables(self.window.device)
        return self

    def forward(self, wave: Tensor) -> Tensor:
        single = wave.dim() == 1
        batch = wave.unsqueeze(0) if single else wave
        if batch.dim() != 2 or batch.shape[-1] < self.frame_length:
            raise InputError(
                f"fbank needs a waveform (S,) or (B, S) of at least {self.frame_length} samples "
                f"({FRAME_LENGTH_MS:g} ms at {self.sample_rate} Hz), got shape {tuple(wave.shape)}"
            )
        dtype = torch.float64 if wave.dtype == torch.float64 else torch.float32
        frames = batch.to(dtype).unfold(-1, self.frame_length, self.frame_shift)  # (B, T, L)
        if self.dither:
            frames = frames + self.dither * torch.randn_like(frames)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        # Kaldi's pre-emphasis treats the sample before each frame's first as that first sample.
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - self.preemphasis * previous) * self.window.to(dtype)
        spectrum = torch.fft.rfft(frames, n=self.n_fft)  # zero-pads each frame to n_fft
        power = spectrum.real.square() + spectrum.imag.square()  # (B, T, n_fft // 2 + 1)
        energies = power @ self.mel.to(dtype)  # (B, T, num_mel_bins)
        feats = energies.clamp_min(torch.finfo(torch.float32).eps).log()
        return feats.squeeze(0) if single else feats


def fbank(wave: Tensor, **options: float | int | str) -> Tensor:
    """Functional form of ``Fbank``: (B, S) -> (B, T, 128), or (S,) -> (T, 128).

    Builds the tables on each call; models keep an ``Fbank`` module instead.
    """
    return Fbank(**options).to(wave.device)(wave)


def normalize(feats: Tensor, mean: float = AUDIOSET_MEAN, std: float = AUDIOSET_STD) -> Tensor:
    """AST/LTU input normalisation, (x - mean) / (2 * std), with AudioSet statistics by default."""
    return (feats - mean) / (2 * std)


def pad_or_crop(feats: Tensor, target_frames: int) -> Tensor:
    """Zero-pad at the end or crop the time axis (dim -2) to exactly ``target_frames`` frames.

    AST/LTU pad the raw log-mel features to their fixed length (1024 frames = 10.24 s) before
    ``normalize``, so padded frames become ``normalize(0)`` rather than 0.
    """
    missing = target_frames - feats.shape[-2]
    if missing <= 0:
        return feats[..., :target_frames, :]
    return nn.functional.pad(feats, (0, 0, 0, missing))


def frames_for_seconds(seconds: float) -> int:
    """Feature frames produced by ``seconds`` of 16 kHz audio."""
    return num_frames(round(seconds * SAMPLE_RATE))
