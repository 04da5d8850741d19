"""Reading WAV files with numpy, and turning them into model input.

The RIFF chunks are parsed here rather than by the standard library's ``wave``, which reads only
format tag 1: it refuses WAVE_FORMAT_EXTENSIBLE (what sox writes for 24-bit, 32-bit and
multichannel files) and IEEE float. Read: integer PCM of 8 (unsigned), 16, 24 or 32 bits and
IEEE float of 32 or 64 bits, under the plain format tags or WAVE_FORMAT_EXTENSIBLE, any rate and
channel count. A data chunk that claims more bytes than the file holds is an error saying how
much is missing (a short read would silently change the clip); a data size of 0xFFFFFFFF, what
writers that cannot seek back leave, means "to the end of the file".

``probe_wav`` reads the header only (so a caller can refuse a 2-hour file before reading it);
``load_wav`` returns the file as it is, (channels, samples); ``load_audio`` returns what the
front end wants, one 16 kHz mono channel. Every problem with the file is an ``InputError``
whose one-line message starts with the path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.audio.fbank import SAMPLE_RATE
from models.audio.resample import resample
from models.errors import InputError

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# WAVE_FORMAT_EXTENSIBLE names its sample format by a GUID: the format tag, then this fixed tail.
_SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_TO_END_OF_FILE = 0xFFFFFFFF
_WIDTHS = {PCM: (1, 2, 3, 4), IEEE_FLOAT: (4, 8)}  # bytes per sample each format is read at
_READ = "integer PCM (8/16/24/32-bit) and IEEE float (32/64-bit) are read"


@dataclass(frozen=True)
class AudioInfo:
    """What a WAV file holds, from its header: the facts behind any conversion of it."""

    path: Path
    sample_rate: int
    channels: int
    num_samples: int  # per channel
    encoding: str  # e.g. "24-bit PCM", "32-bit float"

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


@dataclass(frozen=True)
class _Layout:
    """Where the samples are and how they are stored."""

    offset: int  # of the first sample byte
    width: int  # bytes per sample
    is_float: bool


def _read_fmt(path: Path, fmt: bytes) -> tuple[int, int, int, int]:
    """fmt chunk -> (format tag, channels, sample rate, bytes per sample), EXTENSIBLE resolved."""
    if len(fmt) < 16:
        raise InputError(f"{path}: damaged WAV: its fmt chunk has {len(fmt)} bytes, fewer than 16")
    tag, channels, rate, _, block_align, _ = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE:
        if len(fmt) < 40 or fmt[26:40] != _SUBFORMAT_TAIL:
            raise InputError(f"{path}: unsupported WAVE_FORMAT_EXTENSIBLE sub-format; {_READ}")
        (tag,) = struct.unpack_from("<H", fmt, 24)
    if tag not in _WIDTHS:
        raise InputError(f"{path}: unsupported WAV sample format (format tag 0x{tag:04x}); {_READ}")
    if channels < 1 or rate < 1 or block_align % channels:
        raise InputError(f"{path}: damaged WAV header: {channels} channels, {rate} Hz, {block_align}-byte frames")
    # The container width, not the declared bit depth: EXTENSIBLE may hold 24 valid bits in 4 bytes.
    width = block_align // channels
    if width not in _WIDTHS[tag]:
        kind = "IEEE float" if tag == IEEE_FLOAT else "integer PCM"
        raise InputError(f"{path}: unsupported {kind} sample width of {width} bytes; {_READ}")
    return tag, channels, rate, width


def _parse(path: Path) -> tuple[AudioInfo, _Layout]:
    """Walk the RIFF chunks up to the data chunk; check that the file holds what it declares."""
    if not path.is_file():
        raise InputError(f"{path}: no such audio file")
    file_bytes = path.stat().st_size
    if file_bytes == 0:
        raise InputError(f"{path}: the audio file is empty")
    fmt = None
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise InputError(f"{path}: not a RIFF/WAVE file")
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                missing = "data" if fmt is not None else "fmt"
                raise InputError(f"{path}: damaged or truncated WAV: no {missing} chunk")
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                break
            if name == b"fmt ":
                fmt = handle.read(size)
            else:
                handle.seek(size, 1)
            handle.seek(size % 2, 1)  # chunks are padded to an even size
        if fmt is None:
            raise InputError(f"{path}: damaged WAV: the data chunk comes before any fmt chunk")
        offset = handle.tell()
    tag, channels, rate, width = _read_fmt(path, fmt)
    frame_bytes = width * channels
    held = file_bytes - offset
    if size != _TO_END_OF_FILE and size > held:
        byte_rate = rate * frame_bytes
        raise InputError(
            f"{path}: truncated WAV: {(size - held) / byte_rate:.2f} s of the {size / byte_rate:.2f} s its header "
            f"declares are missing ({size - held} of {size} data bytes)"
        )
    data_bytes = held if size == _TO_END_OF_FILE else size
    encoding = f"{8 * width}-bit {'float' if tag == IEEE_FLOAT else 'PCM'}"
    info = AudioInfo(path, rate, channels, data_bytes // frame_bytes, encoding)
    return info, _Layout(offset, width, tag == IEEE_FLOAT)


def _decode(raw: np.ndarray, layout: _Layout) -> np.ndarray:
    """Little-endian sample bytes (uint8) -> float32 samples; integer PCM scaled to [-1, 1)."""
    if layout.is_float:
        return raw.view(f"<f{layout.width}").astype(np.float32)
    if layout.width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (raw.astype(np.float32) - 128.0) / 128.0
    if layout.width == 3:  # no numpy dtype: place each 3-byte sample in the top of an int32
        wide = np.zeros((raw.size // 3, 4), dtype=np.uint8)
        wide[:, 1:] = raw.reshape(-1, 3)
        return wide.view("<i4").ravel().astype(np.float32) / 2.0**31
    return raw.view(f"<i{layout.width}").astype(np.float32) / float(2 ** (8 * layout.width - 1))


def probe_wav(path: str | Path) -> AudioInfo:
    """The file's rate, channels, length and encoding, from its header; no sample is read."""
    return _parse(Path(path))[0]


def load_wav(path: str | Path) -> tuple[Tensor, int]:
    """Read a WAV file (see the module docstring for the formats).

    Returns (waveform, sample_rate): waveform is float32 (channels, samples), in [-1, 1] for
    integer PCM; float files keep their values (which may exceed 1).
    """
    info, layout = _parse(Path(path))
    if info.num_samples == 0:
        raise InputError(f"{info.path}: the WAV file holds zero samples")
    with info.path.open("rb") as handle:
        handle.seek(layout.offset)
        raw = np.fromfile(handle, dtype=np.uint8, count=info.num_samples * info.channels * layout.width)
    samples = _decode(raw, layout)
    bad = 0 if not layout.is_float else int((~np.isfinite(samples)).sum())
    if bad:
        raise InputError(f"{info.path}: {bad} of its float samples are NaN or infinite")
    return torch.from_numpy(samples.reshape(info.num_samples, info.channels).T.copy()), info.sample_rate


def load_audio(path: str | Path, target_sr: int = SAMPLE_RATE) -> Tensor:
    """Read a WAV file as one mono channel at ``target_sr``: float32 (samples,).

    Channels are averaged, then resampled with a band-limited (anti-aliased) filter;
    ``probe_wav`` says whether either happened.
    """
    waveform, rate = load_wav(path)
    try:
        return resample(waveform.mean(dim=0), rate, target_sr)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
