"""`lalm-bench generate`: end to end on a WAV file, and one clear line (exit 2) for bad input."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from tests.conftest import write_wav


def test_generate_prints_tokens_and_phase_times(wav_file, capsys):
    assert main(["generate", "ssm", str(wav_file), "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "tokens:" in out and len(out.split("tokens:")[1].splitlines()[0].split()) == 3
    for phase in ("fbank", "encoder", "prefill", "decode"):
        assert phase in out


def _float32_wav(samples: np.ndarray) -> bytes:
    """A WAV of IEEE-float samples (format tag 3): a sample format the reader must refuse."""
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    wav = write_wav(tmp_path / "ok.wav", np.zeros(16000))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    float_wav = tmp_path / "float32.wav"
    float_wav.write_bytes(_float32_wav(np.zeros(1600, dtype="<f4")))
    return {
        "unknown variant": (["generate", "rnn+gpt", str(wav)], "unknown variant"),
        "unknown size": (["generate", "ssm", str(wav), "--size", "huge"], "unknown size"),
        "missing file": (["generate", "ssm", str(tmp_path / "nope.wav")], "nope.wav"),
        "empty file": (["generate", "ssm", str(empty)], "empty.wav"),
        "not a WAV": (["generate", "ssm", str(text)], "notes.wav"),
        "float sample format": (["generate", "ssm", str(float_wav)], "float32.wav"),
    }


@pytest.mark.parametrize(
    "case", ["unknown variant", "unknown size", "missing file", "empty file", "not a WAV", "float sample format"]
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    argv, needle = _bad_inputs(tmp_path)[case]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    argv, needle = _bad_inputs(tmp_path)["not a WAV"]
    proc = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and needle in proc.stderr
