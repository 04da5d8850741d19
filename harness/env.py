"""Environment capture: enough to trace any number back to the code, libraries and hardware.

Nothing here imports torch or initialises CUDA: versions come from package metadata and GPUs
from NVML, so capturing the environment is cheap and safe in any process (driver or worker).
"""
from __future__ import annotations

import functools
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
PACKAGES = ("torch", "transformers", "numpy", "pandas", "pyarrow", "pydantic", "ray", "mamba-ssm", "causal-conv1d", "lalm-bench")


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
        "captured": now(),
    }
