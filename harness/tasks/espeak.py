"""Speech synthesis through libespeak-ng (shipped by the `espeakng-loader` wheel) via ctypes.

No system package and no audio device: the library renders into a callback and we collect the
samples in memory. The library holds global state, so one process owns one synthesiser, and its
output depends on the order of calls (the wave generator carries state from one utterance to the
next): synthesise in a fixed order to get the same audio back.
"""
from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from harness.errors import UserError

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_CHARS_UTF8 = 1
_EE_OK = 0

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class VoiceSettings:
    """How one utterance sounds: espeak voice `base+variant`, speed and pitch."""

    base: str  # language/accent voice, e.g. "en-us"
    variant: str  # timbre variant, e.g. "m3" or "f2"
    rate_wpm: int  # words per minute (espeak accepts 80..450)
    pitch: int  # base pitch 0..99
    pitch_range: int  # intonation range 0..99

    @property
    def name(self) -> str:
        return f"{self.base}+{self.variant}"


class Espeak:
    """One libespeak-ng instance that turns text into float32 audio at `sample_rate`."""

    def __init__(self, sample_rate: int = 16000) -> None:
        try:
            import espeakng_loader
        except ImportError as err:  # the wheel is a declared dependency; say how to get it
            raise UserError("speech synthesis needs the `espeakng-loader` package (pip install espeakng-loader)") from err
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare_signatures()
        native_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _INITIALIZE_DONT_EXIT
        )
        if native_rate <= 0:
            raise RuntimeError(f"libespeak-ng failed to initialise (returned {native_rate})")
        self.native_rate = native_rate
        self.sample_rate = sample_rate
        self._chunks: list[np.ndarray] = []
        # Keep a reference: the C library calls it after this constructor returns.
        self._callback = _SYNTH_CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _declare_signatures(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    def _collect(self, samples, count: int, _events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0 = keep synthesising

    def synthesise(self, text: str, voice: VoiceSettings) -> np.ndarray:
        """Render `text` -> (S,) float32 in [-1, 1] at `self.sample_rate`, silence included."""
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
            raise UserError(f"espeak-ng has no voice {voice.name!r}")
        self._lib.espeak_SetParameter(_PARAM_RATE, voice.rate_wpm, 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, voice.pitch, 0)
        self._lib.espeak_SetParameter(_PARAM_RANGE, voice.pitch_range, 0)
        self._chunks = []
        encoded = text.encode("utf-8") + b"\0"
        status = self._lib.espeak_Synth(encoded, len(encoded), 0, 0, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        if status != _EE_OK or not self._chunks:
            raise RuntimeError(f"libespeak-ng could not synthesise {text!r} with voice {voice.name!r} (status {status})")
        native = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        # scipy's polyphase filter, not models.audio.resample: thousands of short clips, and
        # building torch kernels per call would dominate the generation time.
        divisor = math.gcd(self.native_rate, self.sample_rate)
        up, down = self.sample_rate // divisor, self.native_rate // divisor
        return resample_poly(native, up, down).astype(np.float32)


@functools.lru_cache(maxsize=1)
def shared_synthesiser(sample_rate: int = 16000) -> Espeak:
    """The process's one synthesiser: libespeak-ng keeps a single global state and callback."""
    return Espeak(sample_rate)
