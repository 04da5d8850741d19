"""A synthetic Speech Commands v2: espeak-ng speech in the exact published layout, offline.

Every clip is 1 s, 16 kHz, 16-bit mono: one word from one voice (an espeak accent `base` with a
timbre `variant`), at a random speed, pitch and intonation range, placed at a random position,
mixed with coloured noise at a fixed SNR, then scaled to a random peak level. The splits are by
timbre variant: no variant heard in validation or test occurs in training, so the test voices
are unseen. Everything follows from the seed: the same config writes the same bytes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.tasks.espeak import VoiceSettings, shared_synthesiser
from harness.tasks.speech_commands import (
    BACKGROUND_DIR,
    COMMAND_WORDS,
    TESTING_LIST,
    UNKNOWN_WORDS,
    VALIDATION_LIST,
)
from harness.tasks.wav_writer import write_wav
from models.audio import SAMPLE_RATE

ACCENTS = ("en-us", "en", "en-GB-scotland", "en-029", "en-GB-x-rp", "en-US-nyc", "en-GB-x-gbclan", "en-GB-x-gbcwmd")
TIMBRES = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "whisper", "whisperf", "adam", "Alicia", "Andy", "Annie",
    "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "Denis", "Diogo",
    "edward", "grandma", "grandpa", "Henrique", "Hugo", "iven", "john", "Lee", "linda", "Mario",
    "max", "Michael", "michel", "Nguyen", "norbert", "quincy", "Reed", "rob", "shelby", "steph",
    "travis", "victor", "zac",
)
# Background noise files: name -> spectral slope (power ~ 1/f**slope), or None for mains hum.
NOISES = {"white_noise": 0.0, "pink_noise": 1.0, "brown_noise": 2.0, "mains_hum": None}
CONFIG_FILE = "synthesis.json"
CLIP_SAMPLES = SAMPLE_RATE  # 1 s


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    timbres: int = len(TIMBRES)  # the first N timbre variants are used (fewer: a smaller set)
    voices_per_timbre: int = 4  # accents drawn per timbre variant
    takes: int = 1  # clips per (voice, command word)
    words: tuple[str, ...] = COMMAND_WORDS  # command words to speak (fewer: a quicker smoke set)
    unknown_per_voice: int = 2  # non-command words per voice (the `_unknown_` class)
    snr_db: float = 30.0  # speech-to-noise ratio of every word clip
    validation_timbres: int = 5
    test_timbres: int = 5
    noise_seconds: float = 60.0  # length of each `_background_noise_` file
    # Nuisance ranges. Voices (timbre x accent) and word position vary fully; speed, pitch and
    # level only a little, so that the tiny models, trained from scratch, learn the words within
    # minutes on a CPU: with peaks from -20 dBFS, speeds 120-220 wpm, pitch 15-85 and SNR 20 dB
    # (or even -12..-3 dBFS, 140-200 wpm, pitch 30-70, SNR 30 dB) tiny AST + LLaMA still
    # answered the majority class after 1,500-2,000 steps.
    rate_wpm: tuple[int, int] = (160, 180)
    pitch: tuple[int, int] = (40, 60)
    pitch_range: tuple[int, int] = (40, 60)
    peak_dbfs: tuple[float, float] = (-6.0, -6.0)

    def __post_init__(self) -> None:
        held_out = self.validation_timbres + self.test_timbres
        if not 3 <= self.timbres <= len(TIMBRES):
            raise UserError(f"timbres must be 3..{len(TIMBRES)}, got {self.timbres}")
        if self.validation_timbres < 1 or self.test_timbres < 1 or held_out >= self.timbres:
            raise UserError(f"validation and test timbres must each be >= 1 and leave training timbres "
                            f"(of {self.timbres}); got {self.validation_timbres} and {self.test_timbres}")
        if not 1 <= self.voices_per_timbre <= len(ACCENTS):
            raise UserError(f"voices per timbre must be 1..{len(ACCENTS)}, got {self.voices_per_timbre}")
        unknown = [w for w in self.words if w not in COMMAND_WORDS]
        if not self.words or unknown:
            raise UserError(f"words must be command words ({', '.join(COMMAND_WORDS)}); got {', '.join(unknown) or 'none'}")
        if self.takes < 1 or self.unknown_per_voice < 0:
            raise UserError(f"takes must be >= 1 and unknown words per voice >= 0, got {self.takes}, {self.unknown_per_voice}")


def speaker_id(voice: str) -> str:
    """Speech Commands names speakers by an 8-hex-digit hash."""
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def coloured_noise(rng: np.random.Generator, num_samples: int, kind: str) -> np.ndarray:
    """(S,) float32 noise of unit RMS: power falling as 1/f**slope above 20 Hz, or mains hum."""
    slope = NOISES[kind]
    if slope is None:
        t = np.arange(num_samples) / SAMPLE_RATE
        mains = rng.choice([50.0, 60.0])
        harmonics = sum(np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
        noise = harmonics + 0.1 * rng.standard_normal(num_samples)
    else:
        bins = num_samples // 2 + 1
        spectrum = rng.standard_normal(bins) + 1j * rng.standard_normal(bins)
        freqs = np.fft.rfftfreq(num_samples, 1 / SAMPLE_RATE)
        shape = np.where(freqs < 20.0, 0.0, np.maximum(freqs, 20.0) ** (-slope / 2))
        noise = np.fft.irfft(spectrum * shape, num_samples)
    return (noise / _rms(noise)).astype(np.float32)


def trim_silence(audio: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing 10 ms frames quieter than `threshold_db` below the loudest frame."""
    hop = SAMPLE_RATE // 100
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(energy > energy.max() + threshold_db)[0]
    return audio[loud[0] * hop:(loud[-1] + 1) * hop]


def _draw_voice(rng: np.random.Generator, config: SynthConfig, base: str, timbre: str) -> VoiceSettings:
    return VoiceSettings(
        base=base, variant=timbre,
        rate_wpm=int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1)),
        pitch=int(rng.integers(config.pitch[0], config.pitch[1] + 1)),
        pitch_range=int(rng.integers(config.pitch_range[0], config.pitch_range[1] + 1)),
    )


def render_clip(rng: np.random.Generator, config: SynthConfig, speech: np.ndarray) -> np.ndarray:
    """Place trimmed speech at a random offset in 1 s, add noise at `snr_db`, set a random peak."""
    speech = trim_silence(speech)[:CLIP_SAMPLES]
    offset = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    clip[offset:offset + len(speech)] = speech
    noise = coloured_noise(rng, CLIP_SAMPLES, str(rng.choice(list(NOISES))))
    clip += noise * _rms(speech) * 10 ** (-config.snr_db / 20)
    peak = 10 ** (rng.uniform(*config.peak_dbfs) / 20)
    return clip * (peak / max(float(np.abs(clip).max()), 1e-9))


def _assign_timbres(rng: np.random.Generator, config: SynthConfig) -> dict[str, str]:
    used = TIMBRES[: config.timbres]
    order = [used[i] for i in rng.permutation(len(used))]
    test = order[: config.test_timbres]
    validation = order[config.test_timbres: config.test_timbres + config.validation_timbres]
    return {t: "test" if t in test else "validation" if t in validation else "train" for t in used}


def _write_background(rng: np.random.Generator, config: SynthConfig, out: Path) -> None:
    samples = round(config.noise_seconds * SAMPLE_RATE)
    for name in NOISES:
        level = 10 ** (rng.uniform(-35.0, -20.0) / 20)  # RMS, dBFS
        write_wav(out / BACKGROUND_DIR / f"{name}.wav", coloured_noise(rng, samples, name) * level, SAMPLE_RATE)


def _synthesise_into(out: Path, config: SynthConfig) -> Counter:
    rng = np.random.default_rng(config.seed)
    synth = shared_synthesiser(SAMPLE_RATE)
    split_of = _assign_timbres(rng, config)
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    counts: Counter = Counter()
    for timbre in TIMBRES[: config.timbres]:
        for base in sorted(rng.choice(ACCENTS, size=config.voices_per_timbre, replace=False)):
            speaker = speaker_id(f"{base}+{timbre}")
            unknown = list(rng.choice(UNKNOWN_WORDS, size=config.unknown_per_voice, replace=False))
            words = [(w, take) for w in config.words for take in range(config.takes)] + [(w, 0) for w in unknown]
            for word, take in words:
                voice = _draw_voice(rng, config, base, timbre)
                audio = render_clip(rng, config, synth.synthesise(word, voice))
                rel = f"{word}/{speaker}_nohash_{take}.wav"
                write_wav(out / rel, audio, SAMPLE_RATE)
                split = split_of[timbre]
                if split in lists:
                    lists[split].append(rel)
                counts[split, word if word in COMMAND_WORDS else "_unknown_"] += 1
    _write_background(rng, config, out)
    (out / VALIDATION_LIST).write_text("".join(f"{r}\n" for r in sorted(lists["validation"])))
    (out / TESTING_LIST).write_text("".join(f"{r}\n" for r in sorted(lists["test"])))
    return counts


def _synthesise_in_fresh_process(out: Path, config: SynthConfig) -> Counter:
    """Run the synthesis in a new process: libespeak-ng carries state from one utterance to the
    next (its pitch flutter runs on a global clock that nothing resets), so only a synthesiser
    that starts fresh gives the same audio for the same config, however often it is called.
    A forked child starts at once with this process's modules and an untouched library (this
    process never synthesises); where fork is unavailable, a spawned one re-imports them."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(1) as pool:
        return pool.apply(_synthesise_into, (out, config))


def _config_json(config: SynthConfig) -> dict:
    return {"generator": "lalm-bench synthetic speech commands v1", **dataclasses.asdict(config)}


def generate(out: Path, config: SynthConfig) -> tuple[Counter, bool]:
    """Write the dataset to `out` -> (clip counts by (split, class), whether anything was written).

    A folder already holding this exact config is left as it is (so suites can rerun); any other
    non-empty folder is refused rather than mixed into. Writes to a sibling folder first and
    renames it, so an interrupted run never leaves a half dataset behind.
    """
    out = Path(out)
    expected = _config_json(config)
    if out.exists() and any(out.iterdir()):
        existing = out / CONFIG_FILE
        if existing.is_file() and json.loads(existing.read_text()) == json.loads(json.dumps(expected)):
            return Counter(), False
        raise UserError(f"{out}: folder is not empty and was not generated with these settings; choose a new --out")
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        counts = _synthesise_in_fresh_process(staging, config)
        (staging / CONFIG_FILE).write_text(json.dumps(expected, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts, True
