"""Dataset adapters on small fixture folders in each published layout, well-formed and not."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from harness.errors import UserError
from harness.tasks import load_dataset
from harness.tasks.dataset import Clip, load_waves, read_clip
from tests.conftest import write_wav

RATE = 16000


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * freq * t)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ----------------------------------------------------------------------------- Speech Commands


def speech_commands(root: Path) -> Path:
    """Two speakers per word for yes/no/bed, one held out for validation and one for test."""
    for word in ("yes", "no", "bed"):
        for speaker in ("aaaa1111", "bbbb2222", "cccc3333"):
            (root / word).mkdir(parents=True, exist_ok=True)
            write_wav(root / word / f"{speaker}_nohash_0.wav", tone(1.0, 300 + 100 * len(word)))
    (root / "validation_list.txt").write_text("yes/bbbb2222_nohash_0.wav\nno/bbbb2222_nohash_0.wav\nbed/bbbb2222_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/cccc3333_nohash_0.wav\nno/cccc3333_nohash_0.wav\nbed/cccc3333_nohash_0.wav\n")
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "white_noise.wav", np.random.default_rng(0).uniform(-0.1, 0.1, 30 * RATE))
    (root / "README.md").write_text("not a word folder")
    return root


def test_speech_commands_splits_and_twelve_way_labels(tmp_path: Path):
    root = speech_commands(tmp_path / "sc")
    train = load_dataset("kws", root, "train")
    test = load_dataset("kws", root, "test")
    assert sorted(c.key for c in train.clips if c.labels[0] != "_silence_") == [
        "bed/aaaa1111_nohash_0.wav", "no/aaaa1111_nohash_0.wav", "yes/aaaa1111_nohash_0.wav"]
    assert {c.key: c.labels[0] for c in test.clips if c.labels[0] != "_silence_"} == {
        "yes/cccc3333_nohash_0.wav": "yes", "no/cccc3333_nohash_0.wav": "no", "bed/cccc3333_nohash_0.wav": "_unknown_"}
    silence = [c for c in test.clips if c.labels[0] == "_silence_"]
    assert len(silence) == 1  # as many as the average command word present (yes: 1, no: 1)
    assert test.answers[-2:] == ("unknown", "silence") and test.clip_seconds == 1.0


def test_silence_windows_come_from_disjoint_regions(tmp_path: Path):
    root = speech_commands(tmp_path / "sc")
    for word in ("up", "down", "left", "right", "on", "off", "stop", "go"):
        (root / word).mkdir()
        for speaker in ("aaaa1111", "bbbb2222", "cccc3333"):
            write_wav(root / word / f"{speaker}_nohash_0.wav", tone(1.0))
        for listed, speaker in (("validation_list.txt", "bbbb2222"), ("testing_list.txt", "cccc3333")):
            (root / listed).write_text((root / listed).read_text() + f"{word}/{speaker}_nohash_0.wav\n")
    starts = {}
    for split in ("train", "validation", "test"):
        clips = [c for c in load_dataset("kws", root, split).clips if c.labels[0] == "_silence_"]
        assert clips and all(c.num_samples == RATE for c in clips)
        starts[split] = [c.start for c in clips]
    length = 30 * RATE
    assert all(0 <= s <= 0.8 * length - RATE for s in starts["train"])
    assert all(0.8 * length <= s <= 0.9 * length - RATE for s in starts["validation"])
    assert all(0.9 * length <= s <= length - RATE for s in starts["test"])
    window = read_clip(load_dataset("kws", root, "test").clips[-1], 1.0)
    assert window.shape == (RATE,) and 0 < np.abs(window).max() <= 0.1 + 1e-3


def test_speech_commands_missing_pieces_name_the_path(tmp_path: Path):
    with pytest.raises(UserError, match="nowhere.*folder not found"):
        load_dataset("kws", tmp_path / "nowhere", "train")
    root = speech_commands(tmp_path / "sc")
    (root / "testing_list.txt").unlink()
    with pytest.raises(UserError, match="testing_list.txt: split list not found"):
        load_dataset("kws", root, "train")
    root = speech_commands(tmp_path / "sc2")
    for wav in (root / "_background_noise_").iterdir():
        wav.unlink()
    with pytest.raises(UserError, match="_background_noise_: no .wav files"):
        load_dataset("kws", root, "train")
    empty = tmp_path / "empty"
    (empty / "_background_noise_").mkdir(parents=True)
    (empty / "validation_list.txt").write_text("")
    (empty / "testing_list.txt").write_text("")
    with pytest.raises(UserError, match="no word folders"):
        load_dataset("kws", empty, "train")


def test_listed_but_missing_and_unreadable_clips_are_skipped_and_counted(tmp_path: Path):
    root = speech_commands(tmp_path / "sc")
    (root / "testing_list.txt").write_text((root / "testing_list.txt").read_text() + "go/eeee5555_nohash_0.wav\n")
    (root / "no" / "cccc3333_nohash_0.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    test = load_dataset("kws", root, "test")
    loaded = load_waves(test.clips, test.clip_seconds)
    assert loaded.waves.shape == (3, RATE)  # yes, bed and one silence window
    skipped = {clip.key: reason for clip, reason in loaded.skipped}
    assert set(skipped) == {"go/eeee5555_nohash_0.wav", "no/cccc3333_nohash_0.wav"}
    assert "eeee5555_nohash_0.wav: no such audio file" in skipped["go/eeee5555_nohash_0.wav"]


def test_unknown_task_and_split(tmp_path: Path):
    with pytest.raises(UserError, match="unknown task 'speech'"):
        load_dataset("speech", tmp_path, "train")
    with pytest.raises(UserError, match="unknown split 'dev'"):
        load_dataset("kws", speech_commands(tmp_path / "sc"), "dev")


# ----------------------------------------------------------------------------- ESC-50

ESC_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def esc50(root: Path, rows: list[list] | None = None, header: list[str] = ESC_HEADER) -> Path:
    rows = rows if rows is not None else [
        [f"{fold}-100{target}-A-{target}.wav", fold, target, name, "False", f"100{target}", "A"]
        for fold in (1, 2, 3, 4, 5) for target, name in ((0, "dog"), (1, "chirping_birds"))
    ]
    write_csv(root / "meta" / "esc50.csv", header, rows)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for row in rows:
        write_wav(root / "audio" / row[0], tone(5.0, 200 + 300 * int(row[2])), rate=44100)
    return root


def test_esc50_folds_and_classes(tmp_path: Path):
    root = esc50(tmp_path / "esc")
    test, train, validation = (load_dataset("esc50", root, s) for s in ("test", "train", "validation"))
    assert {c.key[0] for c in test.clips} == {"5"} and {c.key[0] for c in validation.clips} == {"4"}
    assert {c.key[0] for c in train.clips} == {"1", "2", "3"}
    assert test.classes == ("dog", "chirping_birds") and test.answers == ("dog", "chirping birds")
    loaded = load_waves(test.clips, test.clip_seconds)
    assert loaded.waves.shape == (2, 5 * RATE) and not loaded.skipped  # 44.1 kHz resampled to 16 kHz


def test_esc50_other_test_fold(tmp_path: Path):
    from harness.tasks import esc50 as adapter

    root = esc50(tmp_path / "esc")
    assert {c.key[0] for c in adapter.load(root, "test", fold=2).clips} == {"2"}
    with pytest.raises(UserError, match="fold must be one of"):
        adapter.load(root, "test", fold=6)


def test_esc50_malformed(tmp_path: Path):
    root = esc50(tmp_path / "wrong", header=["file", "fold", "target", "category", "esc10", "src_file", "take"])
    with pytest.raises(UserError, match=r"esc50.csv: missing column\(s\) filename \(found: file, fold"):
        load_dataset("esc50", root, "test")
    root = esc50(tmp_path / "nofold", rows=[["1-1-A-0.wav", "one", 0, "dog", "False", "1", "A"]])
    with pytest.raises(UserError, match="line 2: fold and target must be integers"):
        load_dataset("esc50", root, "test")
    missing = tmp_path / "nometa"
    (missing / "audio").mkdir(parents=True)
    with pytest.raises(UserError, match="meta/esc50.csv: CSV file not found"):
        load_dataset("esc50", missing, "test")


# ----------------------------------------------------------------------------- AudioCaps


def audiocaps(root: Path) -> Path:
    write_csv(root / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], [
        [1, "abc", 30, "A dog barks"], [2, "abc", 30, "A dog is barking loudly"],
        [3, "xyz", 0, "Rain falls on a roof"], [4, "gone", 10, "A car passes by"],
    ])
    (root / "audio" / "test").mkdir(parents=True)
    write_wav(root / "audio" / "test" / "abc.wav", tone(10.0))
    write_wav(root / "audio" / "test" / "Yxyz.wav", tone(4.0))  # the 'Y' prefix of AudioSet downloads
    return root


def test_audiocaps_groups_captions_and_counts_missing_audio(tmp_path: Path):
    data = load_dataset("audiocaps", audiocaps(tmp_path / "ac"), "test")
    assert data.kind == "captioning" and data.clip_seconds == 10.0
    assert {c.key: c.captions for c in data.clips} == {
        "abc": ("A dog barks", "A dog is barking loudly"), "xyz": ("Rain falls on a roof",), "gone": ("A car passes by",)}
    loaded = load_waves(data.clips, data.clip_seconds)
    assert [c.key for c in loaded.clips] == ["abc", "xyz"] and [c.key for c, _ in loaded.skipped] == ["gone"]
    assert loaded.waves.shape == (2, 10 * RATE) and np.all(loaded.waves[1, 4 * RATE:] == 0)  # padded


def test_audiocaps_malformed(tmp_path: Path):
    root = tmp_path / "ac"
    write_csv(root / "test.csv", ["id", "youtube_id", "caption"], [[1, "a", "x"]])
    (root / "audio").mkdir()
    with pytest.raises(UserError, match=r"test.csv: missing column\(s\) audiocap_id"):
        load_dataset("audiocaps", root, "test")
    with pytest.raises(UserError, match="val.csv: CSV file not found"):
        load_dataset("audiocaps", root, "validation")
    (root / "audio").rmdir()
    write_csv(root / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], [[1, "a", 0, "x"]])
    with pytest.raises(UserError, match="audio: AudioCaps audio folder not found"):
        load_dataset("audiocaps", root, "test")


# ----------------------------------------------------------------------------- Clotho


def clotho(root: Path) -> Path:
    header = ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
    write_csv(root / "clotho_captions_evaluation.csv", header, [
        ["birds.wav", "Birds sing", "Birds chirp in trees", "Many birds", "Birdsong outside", "Birds"],
        ["broken.wav", "Static", "Noise", "Hiss", "White noise", "Static noise"],
    ])
    (root / "evaluation").mkdir(parents=True)
    write_wav(root / "evaluation" / "birds.wav", tone(20.0), rate=44100)
    (root / "evaluation" / "broken.wav").write_bytes(b"")
    return root


def test_clotho_reads_five_captions_and_skips_unreadable_audio(tmp_path: Path):
    data = load_dataset("clotho", clotho(tmp_path / "clotho"), "test")
    assert [c.key for c in data.clips] == ["birds.wav", "broken.wav"] and len(data.clips[0].captions) == 5
    loaded = load_waves(data.clips, data.clip_seconds)
    assert loaded.waves.shape == (1, 30 * RATE)
    (clip, reason), = loaded.skipped
    assert clip.key == "broken.wav" and "broken.wav: the audio file is empty" in reason


def test_clotho_malformed(tmp_path: Path):
    root = tmp_path / "clotho"
    write_csv(root / "clotho_captions_evaluation.csv", ["file_name", "caption_1"], [["a.wav", "x"]])
    with pytest.raises(UserError, match=r"missing column\(s\) caption_2, caption_3, caption_4, caption_5"):
        load_dataset("clotho", root, "test")
    header = ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
    write_csv(root / "clotho_captions_evaluation.csv", header, [["a.wav", "x", "y", "z", "w", "v"]])
    with pytest.raises(UserError, match="evaluation: Clotho evaluation audio folder not found"):
        load_dataset("clotho", root, "test")


def test_read_clip_windows_pads_and_crops(tmp_path: Path):
    ramp = np.arange(3 * RATE) / (3 * RATE) * 0.5
    path = write_wav(tmp_path / "ramp.wav", ramp)
    window = read_clip(Clip("w", path, start=RATE, num_samples=RATE // 2), 1.0)
    assert window.shape == (RATE,) and np.all(window[RATE // 2:] == 0)
    assert window[0] == pytest.approx(ramp[RATE], abs=1e-4)
    assert read_clip(Clip("c", path), 2.0).shape == (2 * RATE,)
