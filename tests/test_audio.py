"""The audio front end: Kaldi fbank equality, framing, WAV formats, resampling, bad and truncated files."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from models.audio import (
    FRAMES_PER_SECOND,
    SAMPLE_RATE,
    AudioInfo,
    Fbank,
    fbank,
    frames_for_seconds,
    load_audio,
    load_wav,
    normalize,
    num_frames,
    pad_or_crop,
    probe_wav,
    resample,
)
from models.audio.fbank import AUDIOSET_MEAN, AUDIOSET_STD
from models.errors import InputError

GOLDEN = np.load(Path(__file__).parent / "data" / "fbank_golden.npz")
GOLDEN_SIGNALS = [key.removeprefix("wave_") for key in GOLDEN.files if key.startswith("wave_")]
GOLDEN_CASES = [(name, window) for name in GOLDEN_SIGNALS for window in ("hanning", "povey")]


def golden_wave(name: str) -> torch.Tensor:
    return torch.from_numpy(GOLDEN[f"wave_{name}"].astype(np.float32) / 32768.0)


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    return amplitude * torch.sin(2 * math.pi * freq * t)


def spectrum(signal: torch.Tensor, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, power) of a Hann-windowed signal; the window hides edge transients."""
    x = signal.double().numpy()
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return np.fft.rfftfreq(x.size, 1 / rate), power


def pcm16(signal: torch.Tensor) -> np.ndarray:
    """Samples in [-1, 1] as 16-bit integer values."""
    return np.round(signal.numpy() * 32767).astype(np.int64)


def write_pcm_wav(path: Path, ints: np.ndarray, width: int, rate: int = SAMPLE_RATE) -> None:
    """Write integer samples (samples, channels) as little-endian PCM of ``width`` bytes."""
    if width == 1:
        data = (ints + 128).astype(np.uint8).tobytes()
    else:  # the low ``width`` bytes of each little-endian int32
        data = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(ints.shape[1])
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(data)


def plain_fmt(format_tag: int, bits: int, channels: int = 1, rate: int = SAMPLE_RATE) -> bytes:
    """A 16-byte fmt chunk body (WAVEFORMAT)."""
    block = channels * ((bits + 7) // 8)
    return struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)


def extensible_fmt(sub_format: int, bits: int, valid_bits: int, channels: int, rate: int = SAMPLE_RATE) -> bytes:
    """A 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk body, as sox writes for 24-bit audio."""
    guid = struct.pack("<H", sub_format) + bytes.fromhex("000000001000800000aa00389b71")
    mask = (1 << channels) - 1
    return plain_fmt(0xFFFE, bits, channels, rate) + struct.pack("<HHI", 22, valid_bits, mask) + guid


def write_riff(path: Path, fmt: bytes, data: bytes, declared: int | None = None, before_data: bytes = b"") -> None:
    """A RIFF/WAVE file from its chunks, bypassing the wave module.

    declared: the data chunk's size field (default len(data)); before_data: raw chunks between fmt and data.
    """
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
    body += b"data" + struct.pack("<I", size) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_raw_wav(path: Path, format_tag: int, bits: int, data: bytes = bytes(64)) -> None:
    """A minimal mono RIFF/WAVE file with any format tag and bit depth."""
    write_riff(path, plain_fmt(format_tag, bits), data)


# --- fbank -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,window", GOLDEN_CASES)
def test_fbank_matches_kaldi_golden(name: str, window: str) -> None:
    expected = torch.from_numpy(GOLDEN[f"{window}_{name}"])
    ours = fbank(golden_wave(name), window_type=window)
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max().item() <= 1e-3


def test_batched_fbank_equals_per_item() -> None:
    waves = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    front_end = Fbank()
    batched = front_end(waves)
    assert batched.shape == (3, num_frames(8000), 128)
    for item, wave_ in enumerate(waves):
        torch.testing.assert_close(batched[item], front_end(wave_), atol=1e-5, rtol=0)


@pytest.mark.parametrize("num_samples", [400, 401, 559, 560, 16000, 37920])
def test_frame_count_formula(num_samples: int) -> None:
    feats = fbank(torch.randn(2, num_samples))
    assert feats.shape == (2, 1 + (num_samples - 400) // 160, 128)
    assert num_frames(num_samples) == feats.shape[1]


def test_one_second_is_about_one_hundred_frames() -> None:
    assert FRAMES_PER_SECOND == 100
    assert frames_for_seconds(10.0) == 998  # AST/LTU pad these 998 frames to 1024
    assert frames_for_seconds(0.01) == 0


def test_waveform_shorter_than_a_frame_is_rejected() -> None:
    with pytest.raises(InputError, match="at least 400 samples"):
        fbank(torch.zeros(399))


def test_unknown_window_is_rejected() -> None:
    with pytest.raises(InputError, match="hamming"):
        Fbank(window_type="hamming")


def test_half_precision_cast_keeps_float32_tables() -> None:
    wave_ = golden_wave("1.00s")
    reference = Fbank()(wave_)
    cast = Fbank().to(torch.bfloat16)
    assert cast.mel.dtype == torch.float32 and cast.window.dtype == torch.float32
    torch.testing.assert_close(cast(wave_), reference, atol=0, rtol=0)


def test_dither_perturbs_features_reproducibly() -> None:
    wave_ = golden_wave("1.00s")
    torch.manual_seed(3)
    first = fbank(wave_, dither=1e-3)
    torch.manual_seed(3)
    again = fbank(wave_, dither=1e-3)
    assert torch.equal(first, again)
    assert not torch.equal(first, fbank(wave_))


def test_normalize_uses_audioset_statistics() -> None:
    feats = torch.tensor([AUDIOSET_MEAN, AUDIOSET_MEAN + 2 * AUDIOSET_STD])
    torch.testing.assert_close(normalize(feats), torch.tensor([0.0, 1.0]))


def test_pad_or_crop_fixes_the_time_axis() -> None:
    feats = torch.randn(2, 98, 128)
    padded = pad_or_crop(feats, 1024)
    assert padded.shape == (2, 1024, 128)
    assert torch.equal(padded[:, :98], feats) and not padded[:, 98:].any()
    assert torch.equal(pad_or_crop(feats, 50), feats[:, :50])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fbank_on_cuda_matches_golden() -> None:
    # float64 removes FFT rounding, so cuFFT and the CPU FFT must agree with the golden; the
    # float32 run then only adds cuFFT's own rounding, which is small next to the features.
    expected = torch.from_numpy(GOLDEN["hanning_2.37s"])
    batch = golden_wave("2.37s").cuda().expand(4, -1)
    front_end = Fbank().cuda()
    exact = front_end(batch.double())
    assert (exact.cpu() - expected).abs().max().item() <= 1e-3
    assert (front_end(batch) - exact).abs().max().item() <= 1e-3


# --- resampling --------------------------------------------------------------------------------


@pytest.mark.parametrize("orig_sr,freq", [(44100, 1000.0), (8000, 3000.0), (22050, 5000.0), (48000, 440.0)])
def test_resampling_preserves_a_sine(orig_sr: int, freq: float) -> None:
    out = resample(sine(freq, orig_sr), orig_sr, SAMPLE_RATE)
    assert out.shape == (SAMPLE_RATE,)
    freqs, power = spectrum(out, SAMPLE_RATE)
    assert abs(freqs[power.argmax()] - freq) <= 1.0
    interior = out[1000:-1000]  # away from the zero-padded edges
    assert interior.square().mean().sqrt().item() == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)


def test_downsampling_removes_content_above_the_new_nyquist() -> None:
    # 11 kHz cannot exist at 16 kHz; a naive decimator would fold it onto 5 kHz.
    tone, above_nyquist = sine(1000.0, 44100), sine(11000.0, 44100)
    out = resample(tone + above_nyquist, 44100, SAMPLE_RATE)
    freqs, power = spectrum(out, SAMPLE_RATE)
    assert power[freqs > 1500].sum() < 1e-6 * power.sum()


def test_upsampling_leaves_no_images() -> None:
    # At 8 kHz a 3 kHz tone has an image at 5 kHz; band-limited upsampling must not show it.
    freqs, power = spectrum(resample(sine(3000.0, 8000), 8000, SAMPLE_RATE), SAMPLE_RATE)
    assert power[freqs > 4000].sum() < 1e-6 * power.sum()


def test_resample_keeps_leading_dimensions_and_identity() -> None:
    waves = torch.randn(2, 3, 4410)
    assert resample(waves, 44100, SAMPLE_RATE).shape == (2, 3, 1600)
    assert resample(waves, 16000, 16000) is waves


@pytest.mark.parametrize("orig_sr,target_sr", [(44101, 16000), (0, 16000)])
def test_unusable_rates_are_rejected(orig_sr: int, target_sr: int) -> None:
    with pytest.raises(InputError, match=f"{orig_sr} Hz"):
        resample(torch.zeros(100), orig_sr, target_sr)


# --- WAV files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_wav_round_trip(tmp_path: Path, width: int) -> None:
    full_scale = 2 ** (8 * width - 1)
    rng = np.random.default_rng(width)
    ints = rng.integers(-full_scale, full_scale, size=(500, 2))
    path = tmp_path / f"pcm{8 * width}.wav"
    write_pcm_wav(path, ints, width, rate=22050)
    waveform, rate = load_wav(path)
    assert rate == 22050
    assert waveform.dtype == torch.float32 and waveform.shape == (2, 500)
    np.testing.assert_array_equal(waveform.numpy(), (ints.T / full_scale).astype(np.float32))


def test_stereo_is_downmixed_by_averaging(tmp_path: Path) -> None:
    left = pcm16(sine(440.0, SAMPLE_RATE, 0.25))
    right = -left // 2
    path = tmp_path / "stereo.wav"
    write_pcm_wav(path, np.stack([left, right], axis=1), 2)
    mono = load_audio(path)
    assert mono.shape == (4000,)
    np.testing.assert_allclose(mono.numpy(), (left + right) / 2 / 32768, atol=1e-7)


def test_load_audio_resamples_to_16k(tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    write_pcm_wav(path, pcm16(sine(1000.0, 44100))[:, None], 2, rate=44100)
    mono = load_audio(path)
    assert mono.shape == (SAMPLE_RATE,) and mono.dtype == torch.float32
    freqs, power = spectrum(mono, SAMPLE_RATE)
    assert freqs[power.argmax()] == pytest.approx(1000.0, abs=1.0)


def test_raw_wav_helper_writes_readable_pcm(tmp_path: Path) -> None:
    # Guards the helper the rejection tests below rely on.
    path = tmp_path / "raw.wav"
    write_raw_wav(path, format_tag=1, bits=16, data=struct.pack("<4h", 0, 16384, -16384, -32768))
    waveform, rate = load_wav(path)
    assert rate == SAMPLE_RATE
    assert waveform.tolist() == [[0.0, 0.5, -0.5, -1.0]]


def test_sox_24_bit_extensible_is_read_exactly(tmp_path: Path) -> None:
    ints = np.random.default_rng(24).integers(-(2**23), 2**23, size=(480, 2))
    data = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    path = tmp_path / "sox24.wav"
    write_riff(path, extensible_fmt(1, 24, 24, channels=2, rate=48000), data)
    waveform, rate = load_wav(path)
    assert rate == 48000 and waveform.shape == (2, 480)
    np.testing.assert_array_equal(waveform.numpy(), (ints.T / 2**23).astype(np.float32))
    assert probe_wav(path) == AudioInfo(path, 48000, 2, 480, "24-bit PCM")


def test_extensible_24_valid_bits_in_32_bit_containers(tmp_path: Path) -> None:
    ints = np.array([0, 2**23 - 1, -(2**23)]) * 256  # 24 valid bits, left-justified
    path = tmp_path / "x32.wav"
    write_riff(path, extensible_fmt(1, 32, 24, channels=1), ints.astype("<i4").tobytes())
    np.testing.assert_allclose(load_wav(path)[0].numpy()[0], ints / 2**31, rtol=0, atol=1e-7)


@pytest.mark.parametrize("bits,extensible", [(32, False), (64, False), (32, True)])
def test_ieee_float_wavs_keep_their_values(tmp_path: Path, bits: int, extensible: bool) -> None:
    samples = np.array([[0.0, 0.25], [-0.5, 1.5]])  # float files may exceed full scale
    fmt = extensible_fmt(3, bits, bits, channels=2) if extensible else plain_fmt(3, bits, channels=2)
    path = tmp_path / f"float{bits}.wav"
    write_riff(path, fmt, samples.astype(f"<f{bits // 8}").tobytes())
    waveform, _ = load_wav(path)
    np.testing.assert_array_equal(waveform.numpy(), samples.T.astype(np.float32))
    assert probe_wav(path).encoding == f"{bits}-bit float"


def test_truncated_wav_says_how_much_is_missing(tmp_path: Path) -> None:
    data = np.zeros(SAMPLE_RATE * 3, dtype="<i2").tobytes()  # 3 s declared
    path = tmp_path / "cut.wav"
    write_riff(path, plain_fmt(1, 16), data[: len(data) // 3], declared=len(data))  # 1 s held
    for load in (probe_wav, load_wav, load_audio):
        with pytest.raises(InputError) as caught:
            load(path)
        assert str(caught.value) == (
            f"{path}: truncated WAV: 2.00 s of the 3.00 s its header declares are missing (64000 of 96000 data bytes)"
        )


def test_streamed_wav_without_a_size_reads_to_the_end(tmp_path: Path) -> None:
    # Writers that cannot seek back to fill in the size leave 0xFFFFFFFF there.
    path = tmp_path / "stream.wav"
    write_riff(path, plain_fmt(1, 16), struct.pack("<3h", 0, 16384, -16384), declared=0xFFFFFFFF)
    assert load_wav(path)[0].tolist() == [[0.0, 0.5, -0.5]]


def test_odd_sized_chunks_before_the_data_are_skipped_with_their_pad_byte(tmp_path: Path) -> None:
    path = tmp_path / "tagged.wav"
    listing = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"
    write_riff(path, plain_fmt(1, 16), struct.pack("<2h", 16384, -16384), before_data=listing)
    assert load_wav(path)[0].tolist() == [[0.5, -0.5]]


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("these are not the samples you are looking for\n")
    elif kind == "riff_not_wave":
        path.write_bytes(b"RIFF" + struct.pack("<I", 4) + b"AVI ")
    elif kind == "no_samples":
        write_pcm_wav(path, np.zeros((0, 1), dtype=np.int64), 2)
    elif kind == "pcm64":
        write_raw_wav(path, format_tag=1, bits=64)
    elif kind == "adpcm":
        write_raw_wav(path, format_tag=2, bits=4)
    elif kind == "float16":
        write_raw_wav(path, format_tag=3, bits=16)
    elif kind == "float_nan":
        write_raw_wav(path, format_tag=3, bits=32, data=np.array([0.0, np.nan], dtype="<f4").tobytes())
    elif kind == "no_data_chunk":
        path.write_bytes(b"RIFF" + struct.pack("<I", 28) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + plain_fmt(1, 16))
    return path


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", "no such audio file"),
        ("empty", "empty"),
        ("text", "not a RIFF/WAVE file"),
        ("riff_not_wave", "not a RIFF/WAVE file"),
        ("no_samples", "zero samples"),
        ("pcm64", "integer PCM sample width of 8 bytes"),
        ("adpcm", "format tag 0x0002"),
        ("float16", "IEEE float sample width of 2 bytes"),
        ("float_nan", "1 of its float samples are NaN or infinite"),
        ("no_data_chunk", "no data chunk"),
    ],
)
def test_bad_audio_files_raise_one_line_input_errors(tmp_path: Path, kind: str, message: str) -> None:
    path = _bad_file(tmp_path, kind)
    for load in (load_wav, load_audio):
        with pytest.raises(InputError) as caught:
            load(path)
        text = str(caught.value)
        assert text.startswith(str(path)) and message in text and "\n" not in text
