"""A newcomer's first hour, scripted: the README's commands, in its order, at toy sizes.

Runs the quick start (`make bench`: the `quick` suite and its report, here over 1-2 s of audio
and batch 1 so that it takes a minute), every command of the README's table with its example
(tiny models, short audio, a few training steps), then the bad inputs the README promises one
line and exit 2 for. Each step must exit as expected; a bad input must also print exactly one
line on stderr, with no traceback. Commands run in the checkout, as the README's do (the gate
reads its baselines there); everything they write goes under --work (a new temporary folder by
default). Prints a line per step and the total time; exit 1 if any step
did not behave. Run it from a fresh clone after `make setup`:

    .venv/bin/python scripts/newcomer.py [--work DIR] [--keep]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP_TIMEOUT_S = 600
BAD_INPUT = 2


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]  # lalm-bench arguments
    exit_code: int = 0


def _clip(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A 16-bit mono WAV of a quiet rising tone (the README's `clip.wav`)."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        value = int(3000 * ((i * (200 + i / 50) / rate) % 1.0 - 0.5))
        frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


STATE_WITHOUT_PREFILL = """name = "state-without-prefill"
description = "asks for the state meter but not the phase it reads"
[grid]
variant = ["ssm"]
audio_seconds = [1]
[measure]
phases = ["encoder"]
meters = ["latency", "state"]
"""


def steps(work: Path) -> list[Step]:
    """The README's commands with the files they need, made under `work`."""
    clip = _clip(work / "clip.wav")
    (work / "state.toml").write_text(STATE_WITHOUT_PREFILL)
    (work / "a-file").write_text("not a folder")
    quick, kws, ckpt = work / "results" / "quick", work / "data" / "kws", work / "ckpt" / "ssm"
    short_quick = ("--set", "grid.audio_seconds=[1, 2]", "--set", "grid.batch_size=[1]")
    train = ("--variant", "ssm", "--data", str(kws), "--steps", "4", "--batch-size", "4", "--log-every", "0")
    return [
        # Quick start: `make bench` (venv aside), at toy lengths.
        Step("make bench: run quick", ("run", "quick", "--out", str(quick), "--overwrite", "--quiet", *short_quick)),
        Step("make bench: report", ("report", str(quick), "-o", str(work / "reports" / "quick"))),
        # The commands table, in its order.
        Step("--help", ("--help",)),
        Step("run (resume of a finished run)", ("run", "--resume", str(quick), "--quiet")),
        Step("plan", ("plan", "paper", "--device-spec", "h100-sxm", "--calibrate", str(quick))),
        Step("list", ("list",)),
        Step("list meters", ("list", "meters")),
        Step("env --json", ("env", "--json")),
        Step("env --check", ("env", "--check")),
        Step("show", ("show", str(quick), "--phase", "decode")),
        Step("report", ("report", str(quick), "-o", str(work / "reports" / "again"))),
        Step("compare", ("compare", str(quick), str(quick), "--md", str(work / "diff.md"))),
        Step("generate", ("generate", "ssm", str(clip), "--max-new-tokens", "8")),
        Step("profile", ("profile", "dass+mamba", "--audio-seconds", "2", "-o", str(work / "prof"))),
        Step("gate (wall mode, one kernel)", ("gate", "--mode", "wall", "--kernels", "conv1d", "--rounds", "2",
                                              "--samples", "2", "--budget-s", "1", "--no-confirm")),
        Step("data", ("data", "kws", "--out", str(kws), "--timbres", "3", "--voices-per-timbre", "1",
                      "--takes", "1", "--unknown-per-voice", "0", "--validation-timbres", "1", "--test-timbres", "1")),
        Step("train", ("train", *train, "--out", str(ckpt))),
        Step("eval", ("eval", str(ckpt), "--data", str(kws), "--out", str(work / "results" / "acc"))),
        Step("accuracy", ("accuracy", "--out", str(work / "results" / "study"), "--variants", "ssm",
                          "--voices-per-timbre", "1", "--steps", "4", "--batch-size", "4", "--log-every", "0")),
        # Bad input: one line, exit 2, nothing lost.
        Step("bad: --device banana (generate)", ("generate", "ssm", str(clip), "--device", "banana"), BAD_INPUT),
        Step("bad: --device banana (profile)", ("profile", "ssm", "--device", "banana"), BAD_INPUT),
        Step("bad: --device banana (eval)", ("eval", str(ckpt), "--data", str(kws), "--device", "banana"), BAD_INPUT),
        Step("bad: --set of an unknown key", ("run", "quick", "--set", "foo.bar=1"), BAD_INPUT),
        Step("bad: state meter without prefill", ("run", str(work / "state.toml")), BAD_INPUT),
        Step("bad: unknown suite", ("run", "quik"), BAD_INPUT),
        Step("bad: train --out a file", ("train", *train, "--out", str(work / "a-file")), BAD_INPUT),
        Step("bad: train over another checkpoint", ("train", *train, "--seed", "1", "--out", str(ckpt)), BAD_INPUT),
        Step("bad: accuracy of an unknown variant", ("accuracy", "--out", str(work / "x"), "--variants", "ssm,rnn"),
             BAD_INPUT),
        Step("bad: list of an unknown kind", ("list", "banana"), BAD_INPUT),
        Step("bad: show of no run", ("show", str(work / "nothing")), BAD_INPUT),
        Step("bad: generate on a missing WAV", ("generate", "ssm", str(work / "missing.wav")), BAD_INPUT),
    ]


def _command() -> list[str]:
    """`lalm-bench` as installed beside this interpreter, else `python -m harness`."""
    script = Path(sys.executable).parent / "lalm-bench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness"]


def run_step(step: Step) -> tuple[bool, str, float]:
    """(behaved, why not, seconds) for one step, run in the checkout."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([*_command(), *step.argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"still running after {STEP_TIMEOUT_S} s", time.perf_counter() - start
    seconds = time.perf_counter() - start
    err = proc.stderr.strip().splitlines()
    if proc.returncode != step.exit_code:
        return False, f"exit {proc.returncode}, expected {step.exit_code}: {(err or ['(no stderr)'])[-1]}", seconds
    if step.exit_code == BAD_INPUT and (len(err) != 1 or "Traceback" in proc.stderr):
        return False, f"{len(err)} lines on stderr, expected one: {err[:3]}", seconds
    return True, err[0] if step.exit_code == BAD_INPUT else "", seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for everything written (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lalm-newcomer-"))
    work.mkdir(parents=True, exist_ok=True)
    began, failed = time.perf_counter(), []
    try:
        for step in steps(work.resolve()):
            ok, detail, seconds = run_step(step)
            print(f"{'ok  ' if ok else 'FAIL'} {seconds:6.1f} s  {step.name}" + (f"  [{detail}]" if detail else ""),
                  flush=True)
            if not ok:
                failed.append(step.name)
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - began
    print(f"{'all steps behaved' if not failed else 'FAILED: ' + ', '.join(failed)} ({total / 60:.1f} min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
