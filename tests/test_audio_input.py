"""Audio named on the command line: each problem one line naming the file (exit 2), conversions
said once on stderr (per file, or per dataset), long clips refused past --max-audio-seconds or
forecast before they run."""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import forecast
from harness.audio_input import conversion_note, dataset_conversion_note, read_clip
from harness.cli import main
from harness.tasks import train_run
from models import build
from models.audio import probe_wav
from models.errors import InputError
from models.train import ltu_recipe
from tests.conftest import write_wav
from tests.test_audio import extensible_fmt, plain_fmt, write_riff
from tests.test_tasks_adapters import speech_commands


def _tone(seconds: float, rate: int = 16000, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.repeat((0.3 * np.sin(2 * np.pi * 440 * t))[:, None], channels, axis=1)


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_sox_24_bit_wav_runs(tmp_path, capsys):
    ints = np.round(_tone(0.5)[:, 0] * 2**23).astype("<i4")
    path = tmp_path / "sox24.wav"
    write_riff(path, extensible_fmt(1, 24, 24, channels=1), ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes())
    assert main(["generate", "ssm", str(path), "--max-new-tokens", "2"]) == 0
    assert "0.50 s of audio" in capsys.readouterr().out


def test_float_wav_runs(tmp_path, capsys):
    path = tmp_path / "float32.wav"
    write_riff(path, plain_fmt(3, 32), _tone(0.5)[:, 0].astype("<f4").tobytes())
    assert main(["generate", "ssm", str(path), "--max-new-tokens", "2"]) == 0
    assert "0.50 s of audio" in capsys.readouterr().out


def test_truncated_wav_is_one_line_naming_what_is_missing(tmp_path, capsys):
    data = np.zeros(16000 * 3, dtype="<i2").tobytes()
    path = tmp_path / "cut.wav"
    write_riff(path, plain_fmt(1, 16), data[:16000], declared=len(data))
    assert main(["generate", "ssm", str(path)]) == 2
    line = _one_line(capsys)
    assert line.endswith(f"{path}: truncated WAV: 2.50 s of the 3.00 s its header declares are missing "
                         "(80000 of 96000 data bytes)")


def test_clip_shorter_than_one_fbank_frame_names_the_file_and_the_minimum(tmp_path, capsys):
    path = write_wav(tmp_path / "click.wav", _tone(0.01))
    assert main(["generate", "ssm", str(path)]) == 2
    assert _one_line(capsys).endswith(
        f"{path}: 10.0 ms of audio is too short; the fbank needs at least 25 ms (one frame)")


def test_8_khz_stereo_is_converted_and_said_once(tmp_path, capsys):
    path = write_wav(tmp_path / "phone.wav", _tone(0.5, rate=8000, channels=2), rate=8000, channels=2)
    assert main(["generate", "ssm", str(path), "--max-new-tokens", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"{path}: 8000 Hz stereo (16-bit PCM) resampled to 16000 Hz "
                                    "and downmixed to mono (the mean of 2 channels)")
    assert "0.50 s of audio" in captured.out


def test_16_khz_mono_says_nothing_about_conversion(tmp_path):
    assert conversion_note(probe_wav(write_wav(tmp_path / "plain.wav", _tone(0.1)))) is None


def test_a_dataset_says_once_how_many_files_it_converts(tmp_path):
    paths = [write_wav(tmp_path / "plain.wav", _tone(0.1)),
             write_wav(tmp_path / "phone.wav", _tone(0.1, 8000, 2), rate=8000, channels=2),
             write_wav(tmp_path / "cd.wav", _tone(0.1, 44100), rate=44100),
             tmp_path / "missing.wav"]  # left to the loader, which skips and counts it
    assert dataset_conversion_note(tmp_path, paths) == (
        f"{tmp_path}: 2 of 3 audio files are converted to 16000 Hz mono "
        "(1 at 8000 Hz with 2 channel(s), 1 at 44100 Hz with 1 channel(s))"
    )
    assert dataset_conversion_note(tmp_path, paths[:1]) is None


def test_training_says_once_how_many_of_its_files_it_converts(tmp_path, capsys, monkeypatch):
    root = speech_commands(tmp_path / "sc")
    for speaker in ("eeee4444", "ffff5555"):
        write_wav(root / "yes" / f"{speaker}_nohash_0.wav", _tone(1.0, 8000, 2), rate=8000, channels=2)

    def stop(*args, **kwargs):
        raise InterruptedError("the note comes before the model")

    monkeypatch.setattr(train_run, "build", stop)
    with pytest.raises(InterruptedError):
        train_run.run_training(train_run.TrainJob("ast+llama", "tiny", "kws", root, tmp_path / "ck", ltu_recipe(1)))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{root}: 2 of ")
    assert lines[0].endswith("audio files are converted to 16000 Hz mono (2 at 8000 Hz with 2 channel(s))")


def test_clip_longer_than_the_limit_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    path = write_wav(tmp_path / "long.wav", _tone(2.0))
    monkeypatch.setattr("models.audio.load_audio", lambda *a, **k: pytest.fail("read past the limit"))
    assert main(["generate", "ssm", str(path), "--max-audio-seconds", "1.5"]) == 2
    assert _one_line(capsys).endswith(f"{path}: 2.0 s of audio is more than --max-audio-seconds 1.5; "
                                      "raise the limit to run it (memory and time grow with length)")


def test_raised_limit_reads_the_clip(tmp_path):
    path = write_wav(tmp_path / "long.wav", _tone(2.0))
    wave, info = read_clip(str(path), max_seconds=2.0)
    assert wave.shape == (32000,) and info.seconds == 2.0
    with pytest.raises(InputError, match="must be positive"):
        read_clip(str(path), max_seconds=0)


def test_long_clip_gets_a_forecast_line_before_it_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(forecast, "LONG_INPUT_SECONDS", 1.0)
    path = write_wav(tmp_path / "long.wav", _tone(2.0))
    assert main(["generate", "transformer", str(path), "--max-new-tokens", "2"]) == 0
    line = _one_line(capsys)
    assert line.startswith(f"{path}: 2.0 s of audio; ast+llama (tiny) on cpu: predicted peak memory ~")


def test_live_bytes_counts_each_storage_once_while_it_lives():
    with forecast.LiveBytes(known=set()) as live:
        a = torch.zeros(1000)  # 4000 B
        view = a[10:]  # shares a's storage
        b = a + 1  # 8000 B live
        del a
        gc.collect()
        assert live.live == 8000  # the view keeps a's storage alive
        del view
        gc.collect()
        c = b * 2  # a's storage released: 8000 B again, never 12000
        assert live.live == 8000 and live.peak == 8000
    del b, c


def test_dry_run_memory_grows_linearly_with_fused_attention():
    # On the meta device attention would hold the whole L x L score matrix: 4x the length would
    # take ~16x the memory. On fake CPU tensors it takes the fused path it takes when run.
    model = build("transformer", "tiny")
    short, long = (forecast.dry_run(model, 16000 * seconds, 8) for seconds in (60, 240))
    assert 3 < long.peak_bytes / short.peak_bytes < 5
    assert long.flops["encoder"] > 4 * short.flops["encoder"]  # attention FLOPs do grow faster
