"""Audio front end: WAV files -> 16 kHz mono waveforms -> Kaldi-compatible log-mel features."""

from models.audio.fbank import (
    FRAMES_PER_SECOND,
    NUM_MEL_BINS,
    SAMPLE_RATE,
    Fbank,
    fbank,
    frames_for_seconds,
    normalize,
    num_frames,
    pad_or_crop,
)
from models.audio.resample import resample
from models.audio.wav import AudioInfo, load_audio, load_wav, probe_wav

__all__ = [
    "AudioInfo",
    "FRAMES_PER_SECOND",
    "NUM_MEL_BINS",
    "SAMPLE_RATE",
    "Fbank",
    "fbank",
    "frames_for_seconds",
    "load_audio",
    "load_wav",
    "normalize",
    "num_frames",
    "pad_or_crop",
    "probe_wav",
    "resample",
]
