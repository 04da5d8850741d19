"""The synthetic keyword-spotting set: layout, audio format, voice-disjoint splits, determinism."""
from __future__ import annotations

import hashlib
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.errors import UserError
from harness.tasks import load_dataset
from harness.tasks.speech_commands import BACKGROUND_DIR, CLASSES, COMMAND_WORDS, UNKNOWN_WORDS
from harness.tasks.synth_kws import TIMBRES, SynthConfig, coloured_noise, generate, speaker_id, trim_silence

SMALL = SynthConfig(seed=3, timbres=6, voices_per_timbre=1, unknown_per_voice=1, validation_timbres=1,
                    test_timbres=1, noise_seconds=12.0)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kws") / "data"
    counts, written = generate(out, SMALL)
    assert written and sum(counts.values()) == 6 * (len(COMMAND_WORDS) + 1)
    return out


def test_layout_matches_speech_commands_v2(small_set: Path):
    words = {p.name for p in small_set.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert set(COMMAND_WORDS) <= words and words - set(COMMAND_WORDS) <= set(UNKNOWN_WORDS)
    assert sorted(p.name for p in (small_set / BACKGROUND_DIR).glob("*.wav")) == [
        "brown_noise.wav", "mains_hum.wav", "pink_noise.wav", "white_noise.wav"]
    for listed in ("validation_list.txt", "testing_list.txt"):
        entries = (small_set / listed).read_text().splitlines()
        assert entries and all((small_set / e).is_file() for e in entries)
        assert all(e.count("/") == 1 and "_nohash_" in e for e in entries)


def test_clips_are_one_second_16k_16bit_mono_and_not_silent(small_set: Path):
    clips = sorted(small_set.glob("yes/*.wav")) + sorted(small_set.glob("stop/*.wav"))
    for path in clips:
        with wave.open(str(path)) as reader:
            assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate(), reader.getnframes()) == (1, 2, 16000, 16000)
            pcm = np.frombuffer(reader.readframes(16000), dtype="<i2")
        assert np.abs(pcm).max() > 1000  # peak at -20 dBFS or louder


def test_splits_are_disjoint_by_voice(small_set: Path):
    held = {s: set((small_set / f).read_text().split()) for s, f in (("validation", "validation_list.txt"), ("test", "testing_list.txt"))}
    speakers = {s: {e.split("/")[1].split("_")[0] for e in entries} for s, entries in held.items()}
    train = load_dataset("kws", small_set, "train")
    train_speakers = {c.key.split("/")[1].split("_")[0] for c in train.clips if not c.key.startswith("_")}
    assert speakers["test"] and not speakers["test"] & train_speakers
    assert not speakers["validation"] & train_speakers and not speakers["validation"] & speakers["test"]


def test_adapter_reads_the_twelve_way_task(small_set: Path):
    test = load_dataset("kws", small_set, "test")
    labels = [c.labels[0] for c in test.clips]
    assert test.classes == CLASSES and set(labels) == set(CLASSES)
    # silence: as many windows as the average command word has clips
    assert labels.count("_silence_") == labels.count("yes")


def test_same_config_same_bytes_and_rerun_is_a_no_op(small_set: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate(again, SMALL)
    assert _digest(again) == _digest(small_set)
    assert generate(again, SMALL) == (generate(again, SMALL)[0], False)


def test_other_seed_gives_other_audio(small_set: Path, tmp_path: Path):
    other = tmp_path / "other"
    generate(other, SynthConfig(**{**SMALL.__dict__, "seed": 4}))
    assert _digest(other) != _digest(small_set)


def test_refuses_a_folder_with_other_content(tmp_path: Path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        generate(tmp_path, SMALL)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_config_is_recorded(small_set: Path):
    recorded = json.loads((small_set / "synthesis.json").read_text())
    assert recorded["seed"] == 3 and recorded["snr_db"] == SMALL.snr_db


@pytest.mark.parametrize("bad", [dict(timbres=2), dict(test_timbres=0), dict(voices_per_timbre=0),
                                 dict(validation_timbres=3, test_timbres=3, timbres=6), dict(takes=0),
                                 dict(words=("yes", "zero")), dict(words=()), dict(timbres=99)])
def test_bad_config_is_a_user_error(bad):
    with pytest.raises(UserError):
        SynthConfig(**bad)


def test_noise_has_unit_rms_and_its_spectral_slope():
    rng = np.random.default_rng(0)
    for kind, slope in (("white_noise", 0.0), ("pink_noise", -1.0), ("brown_noise", -2.0)):
        noise = coloured_noise(rng, 1 << 16, kind)
        assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-3)
        power = np.abs(np.fft.rfft(noise)) ** 2
        freqs = np.fft.rfftfreq(noise.size, 1 / 16000)
        band = (freqs > 100) & (freqs < 4000)
        fitted = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
        assert fitted == pytest.approx(slope, abs=0.15)


def test_trim_keeps_the_loud_part():
    audio = np.zeros(16000, dtype=np.float32)
    audio[3200:6400] = 0.5  # whole 10 ms frames
    trimmed = trim_silence(audio)
    assert len(trimmed) == 3200 and np.all(trimmed == 0.5)


def test_speaker_ids_look_like_speech_commands():
    ids = {speaker_id(f"en-us+{t}") for t in TIMBRES}
    assert len(ids) == len(TIMBRES) and all(len(i) == 8 and int(i, 16) >= 0 for i in ids)


def test_cli_writes_the_set(tmp_path: Path, capsys):
    out = tmp_path / "cli"
    code = main(["data", "kws", "--out", str(out), "--voices-per-timbre", "1", "--unknown-per-voice", "0",
                 "--validation-timbres", "1", "--test-timbres", "1", "--timbres", "4"])
    assert code == 0 and "wrote 40 word clips" in capsys.readouterr().out
    assert main(["data", "kws", "--out", str(out), "--voices-per-timbre", "1", "--unknown-per-voice", "0",
                 "--validation-timbres", "1", "--test-timbres", "1", "--timbres", "4"]) == 0
    assert "nothing to do" in capsys.readouterr().out
