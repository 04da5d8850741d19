"""Count mode: every kernel's cost as the instructions it executes, counted by callgrind.

One child process (`harness.gate.count_worker`) runs under ``valgrind --tool=callgrind
--instr-atstart=no``: interpreter start, imports and model building run uninstrumented, and
only each kernel's counted calls are instrumented (client requests, `harness.gate.callgrind`).
The counts repeat from run to run and from host to host, because the code that runs is pinned:

- **instruction-set paths.** Valgrind runs no AVX-512, and its emulation of AVX2's fused
  multiply-adds costs seconds per matmul; so torch's dispatch, MKL and oneDNN are capped at
  SSE4.2-level code and numba compiles for a generic x86-64 (`ISA_ENV`). Valgrind presents
  the same virtual CPU on every x86-64 host, so the same paths run everywhere; the record
  says which ran and a comparison across different ones is refused;
- **numba's disk cache** is a separate folder (`.cache/gate/numba`): code compiled there for
  the generic target never mixes with the host-tuned code of ordinary runs;
- one torch thread, hash seed 0, garbage collector off while counting.

Callgrind's cache simulation is left off: its estimated cycles moved by up to 2x between two
processes on unchanged code (where large buffers land in memory decides which of them collide
in the simulated caches), while instruction counts stayed within 0.2%; it also cost a third
more time. Extra memory traffic done by instructions (a copy, an extra pass) is counted anyway.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.errors import UserError
from harness.gate import callgrind
from harness.gate.count_record import CountRecord, Environment, KernelCounts, new_record
from harness.gate.kernels import KERNELS

REPO = Path(__file__).resolve().parents[2]
ISA_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "NUMBA_CPU_NAME": "generic",
}
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
NUMBA_CACHE = callgrind.CACHE_DIR / "numba"


def valgrind_version() -> str:
    out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().removeprefix("valgrind-") or "unknown"


def worker_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the caller's (any injected work included) with the pins above."""
    env = dict(os.environ if base is None else base)
    env.update(ISA_ENV)
    env.update(THREAD_ENV)
    env["NUMBA_CACHE_DIR"] = str(NUMBA_CACHE)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def command(out_dir: Path, client: Path, kernels: list[str], calls: int) -> list[str]:
    """The valgrind command line that counts `kernels`, dumps going into `out_dir`."""
    return [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=no",
        f"--callgrind-out-file={out_dir / 'callgrind.%p'}",
        sys.executable, "-m", "harness.gate.count_worker",
        "--client", str(client), "--out", str(out_dir), "--kernels", ",".join(kernels), "--calls", str(calls),
    ]  # fmt: skip


def read_counts(out_dir: Path, calls: int) -> dict[str, KernelCounts]:
    """Per kernel, its dump's events (instructions, `Ir`) divided by the counted calls."""
    counts: dict[str, KernelCounts] = {}
    for path in sorted(out_dir.glob("callgrind.*"), key=lambda p: [int(n) for n in re.findall(r"\d+", p.name)]):
        kernel, events = callgrind.parse_dump(path)
        if kernel is None:
            continue  # the dump at exit: whatever ran after the last kernel
        per_call = {event: total / calls for event, total in events.items()}
        counts[kernel] = KernelCounts(shape=KERNELS[kernel].shape, calls=calls, per_call=per_call)
    return counts


def measure_counts(kernels: list[str], calls: int) -> CountRecord:
    """Count `kernels` (`calls` counted calls each) in one valgrind child; raise UserError on failure."""
    client = callgrind.client_library()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lalm-gate-counts-") as tmp:
        out_dir = Path(tmp)
        result = subprocess.run(
            command(out_dir, client, kernels, calls), env=worker_env(), cwd=REPO,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = [line for line in result.stderr.splitlines() if not line.startswith("==")][-1:] or ["no output"]
            raise UserError(f"counting under valgrind failed (exit {result.returncode}): {tail[0]}")
        counts = read_counts(out_dir, calls)
        meta = json.loads((out_dir / "meta.json").read_text())
    missing = [k for k in kernels if k not in counts]
    if missing:
        raise UserError(f"counting under valgrind wrote no counts for {', '.join(missing)}")
    environment = Environment(
        code_paths=meta["code_paths"],
        valgrind=valgrind_version(),
        versions=meta["versions"],
    )
    return new_record(environment, {k: counts[k] for k in kernels}, time.perf_counter() - started)
