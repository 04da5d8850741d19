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
    # Untrained tokens (often one id repeated) must not read as the model's answer.
    assert out.splitlines()[1].startswith("weights: random") and "1 CPU thread(s)" in out.splitlines()[0]


def _adpcm_wav(data: bytes) -> bytes:
    """A WAV of 4-bit ADPCM (format tag 2): a compressed sample format the reader must refuse."""
    fmt = struct.pack("<HHIIHH", 2, 1, 16000, 8000, 1, 4)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    wav = write_wav(tmp_path / "ok.wav", np.zeros(16000))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    adpcm_wav = tmp_path / "adpcm.wav"
    adpcm_wav.write_bytes(_adpcm_wav(bytes(800)))
    return {
        "unknown variant": (["generate", "rnn+gpt", str(wav)], "unknown variant"),
        "unknown size": (["generate", "ssm", str(wav), "--size", "huge"], "unknown size"),
        "missing file": (["generate", "ssm", str(tmp_path / "nope.wav")], "nope.wav"),
        "empty file": (["generate", "ssm", str(empty)], "empty.wav"),
        "not a WAV": (["generate", "ssm", str(text)], "notes.wav"),
        "compressed sample format": (["generate", "ssm", str(adpcm_wav)], "adpcm.wav"),
    }


@pytest.mark.parametrize(
    "case", ["unknown variant", "unknown size", "missing file", "empty file", "not a WAV", "compressed sample format"]
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
