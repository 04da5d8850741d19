"""Environment capture: enough to trace any number back to the code, libraries and hardware.

Nothing here imports torch or initialises CUDA: versions come from package metadata and GPUs
from NVML, so capturing the environment is cheap and safe in any process (driver or worker).
Whether the optional CUDA kernels import is asked of a child interpreter (`kernels`), and only
when one of them is installed at all.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "transformers", "numba", "numpy", "pandas", "pyarrow", "pydantic", "ray", "mamba-ssm",
            "causal-conv1d", "lalm-bench")


def now() -> str:
    """UTC timestamp, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


@functools.cache
def git_sha() -> str:
    """HEAD of the source tree this code runs from, '+dirty' when it has uncommitted changes; '' outside git."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}+dirty" if sha and dirty else sha


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus() -> list[dict[str, str]]:
    """Name, memory and driver of every NVIDIA GPU NVML sees; [] without NVML or GPUs."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            found.append({
                "index": str(i),
                "name": pynvml.nvmlDeviceGetName(handle),
                "memory_bytes": str(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                "driver": driver,
            })
        return found
    except pynvml.NVMLError:
        return []
    finally:
        pynvml.nvmlShutdown()


def device_name(device: str) -> str:
    """Name of the device a point ran on. On CUDA, the first visible GPU (a worker that owns one
    GPU sees exactly one), with its index when CUDA_VISIBLE_DEVICES gives one.

    torch is asked only where CUDA is already initialised (a worker that ran on the GPU): asking
    it elsewhere would create a CUDA context, taking memory on the GPU being benchmarked.
    """
    if device != "cuda":
        return cpu_name()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    suffix = f" (GPU {visible})" if visible else ""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return torch.cuda.get_device_name(torch.cuda.current_device()) + suffix
    found = gpus()
    if not found:
        return ""
    index = int(visible) if visible.isdigit() and int(visible) < len(found) else 0
    return found[index]["name"] + suffix


# Optional kernel modules: the import name and what to import from it. Installed is not enough:
# an extension built against another torch fails at import ("undefined symbol"), and mamba-ssm
# >= 2.3 installs without its CUDA scan unless built with MAMBA_KEEP_CUDA_BUILD=TRUE.
KERNEL_IMPORTS = {
    "selective_scan_cuda": "import selective_scan_cuda",
    "causal_conv1d": "from causal_conv1d import causal_conv1d_fn, causal_conv1d_update",
    "triton": "import triton",
    "mamba_ssm": "from mamba_ssm.ops.triton.selective_state_update import selective_state_update",
}
KERNEL_PROBE_TIMEOUT_S = 120
# Run in a child interpreter: imports torch and each kernel module (none initialises CUDA, and
# a half-loaded extension stays out of this process), then asks the scan op what 'auto' runs on CUDA.
_KERNEL_PROBE = """
import json, sys
import torch
found = {}
for name, statement in json.loads(sys.argv[1]).items():
    try:
        exec(statement, {})
        found[name] = "ok"
    except Exception as exc:
        found[name] = (type(exc).__name__ + ": " + (str(exc).strip().splitlines() or [""])[0])[:200]
try:
    from models.ops.selective_scan import resolve_backend
    found["auto_scan_backend_cuda"] = resolve_backend("auto", "cuda")
except Exception as exc:
    found["auto_scan_backend_cuda"] = "unknown: " + type(exc).__name__ + ": " + str(exc)[:150]
print(json.dumps(found))
"""


@functools.cache
def kernels() -> dict[str, str]:
    """Per optional kernel module: "ok", "not installed" or the import's error (one line); and
    `auto_scan_backend_cuda`, the scan implementation the 'auto' setting runs on a CUDA device."""
    installed = {name for name in KERNEL_IMPORTS if importlib.util.find_spec(name) is not None}
    if not installed:  # nothing to import: the scan op then falls back to vectorised torch on CUDA
        return {**dict.fromkeys(KERNEL_IMPORTS, "not installed"), "auto_scan_backend_cuda": "torch"}
    wanted = {name: statement for name, statement in KERNEL_IMPORTS.items() if name in installed}
    return {**dict.fromkeys(KERNEL_IMPORTS, "not installed"), **_probe_kernels(wanted)}


def _probe_kernels(wanted: dict[str, str]) -> dict[str, str]:
    try:
        done = subprocess.run([sys.executable, "-c", _KERNEL_PROBE, json.dumps(wanted)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=KERNEL_PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"probe_error": f"kernel probe did not finish: {exc}"[:300]}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        return {"probe_error": f"kernel probe exited with code {done.returncode}: {tail}"[:300]}


def capture() -> dict:
    """The environment of this process's machine, for run.json and `lalm-bench env`."""
    memory = psutil.virtual_memory()
    found = gpus()
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_sha": git_sha(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count() or 0,
        "memory_bytes": memory.total,
        "gpus": found,
        "gpu_driver": found[0]["driver"] if found else "",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "kernels": kernels(),
        "captured": now(),
    }
