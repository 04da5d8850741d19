"""What a GPU machine offers this project, in ~20 s: the first step of scripts/gpu_check.sh.

Prints one `key  value` line per fact (torch and its CUDA build, the GPU, the driver, `nvidia-smi
-L`, which optional kernels import and what the 'auto' scan setting runs on CUDA, NVML's energy
counter and whether NVML lists this process). Each fact is found on its own, so one that fails
says why and the others still print. Exit code 0 with a usable CUDA device, 3 without one (the
last line then says why).

    python scripts/gpu_probe.py > env.txt
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's harness and models

NO_CUDA = 3
BURST_S = 1.0  # matmuls this long between two energy readings: longer than NVML's update period


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def put(key: str, value: object) -> None:
    print(f"{key:30s} {value}", flush=True)


def fact(key: str, find: Callable[[], object]) -> object:
    """Print `find()` under `key`, or the one-line reason it failed; returns the value or None."""
    try:
        value = find()
    except Exception as exc:  # noqa: BLE001 - every fact is reported, whatever stops it
        put(key, f"unavailable ({one_line(exc)})")
        return None
    put(key, value)
    return value


def nvidia_smi() -> str:
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    return " | ".join(done.stdout.strip().splitlines()) or f"exit {done.returncode}: {done.stderr.strip()[:200]}"


def kernel_imports() -> str:
    """Which optional kernels import and what 'auto' scans with on CUDA: what `lalm-bench env` says."""
    from harness.env import kernels

    return "; ".join(f"{name}: {value}" for name, value in kernels().items())


def driver() -> str:
    from harness.env import gpus

    found = gpus()
    return found[0]["driver"] if found else "NVML lists no GPU"


def energy_over_a_burst(torch) -> str:
    """Two readings of NVML's energy counter around BURST_S of matmuls (the harness's counter)."""
    from harness.measure.energy import energy_counter

    counter, reason = energy_counter("cuda")
    if counter is None:
        return f"no ({reason})"
    a = torch.randn(4096, 4096, device="cuda")
    before, started = counter.read_mj(), time.perf_counter()
    while time.perf_counter() - started < BURST_S:
        a @ a
        torch.cuda.synchronize()
    used = counter.read_mj() - before
    return f"yes: {used} mJ over {BURST_S:g} s of matmuls" + ("" if used > 0 else " (did not move: no energy rows)")


def nvml_sees_this_process() -> str:
    """Whether NVML lists this pid (else per-process memory falls back to device-wide, e.g. in a
    container with its own pid namespace)."""
    from harness.measure.nvml import nvml_handle, nvml_module

    handle, reason = nvml_handle("cuda")
    if handle is None:
        return f"unknown ({reason})"
    pids = [p.pid for p in nvml_module().nvmlDeviceGetComputeRunningProcesses(handle)]
    return "yes" if os.getpid() in pids else f"no: pid {os.getpid()} not in {pids} (memory rows use device-wide used)"


def main() -> int:
    put("python", f"{platform.python_version()} ({sys.executable})")
    put("platform", platform.platform())
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        put("torch", f"does not import ({one_line(exc)})")
        put("verdict", "no CUDA: torch does not import")
        return NO_CUDA
    put("torch", f"{torch.__version__}, CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    fact("nvidia-smi -L", nvidia_smi)
    fact("kernels", kernel_imports)
    if not torch.cuda.is_available():
        why = "a CPU-only build of torch" if torch.version.cuda is None else "torch.cuda.is_available() is False"
        put("verdict", f"no CUDA: {why}")
        return NO_CUDA
    properties = torch.cuda.get_device_properties(0)
    put("gpu", f"{torch.cuda.device_count()} visible; 0: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
               f"sm_{properties.major}{properties.minor}")
    put("torch arch list", " ".join(torch.cuda.get_arch_list()))
    fact("driver", driver)
    fact("nvml energy counter", lambda: energy_over_a_burst(torch))
    fact("nvml sees this process", nvml_sees_this_process)
    put("verdict", "CUDA usable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
