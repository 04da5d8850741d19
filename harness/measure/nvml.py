"""The NVML device behind a torch CUDA device, or the reason there is none.

Meters ask `nvml_handle(device)` and turn a missing handle into a NaN measurement whose note is
the reason ("no CUDA device", "no NVML: ..."). NVML is initialised once per process.
"""
from __future__ import annotations

import functools
import os

import torch


@functools.cache
def nvml_module():
    """pynvml after nvmlInit; raises RuntimeError naming why NVML is unusable."""
    try:
        import pynvml
    except ImportError as exc:
        raise RuntimeError("no NVML: nvidia-ml-py is not installed") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise RuntimeError(f"no NVML: {exc}") from exc
    return pynvml


def nvml_handle(device: str | torch.device) -> tuple[object | None, str]:
    """(NVML handle, "") for a CUDA device, else (None, reason).

    The device is matched by UUID, since CUDA_VISIBLE_DEVICES renumbers devices for CUDA but not
    for NVML; by index only when no devices are hidden.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None, "no CUDA device"
    if not torch.cuda.is_available():
        return None, "no CUDA device: torch.cuda is not available"
    try:
        pynvml = nvml_module()
    except RuntimeError as exc:
        return None, str(exc)
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", ""))
    for candidate in (f"GPU-{uuid}", uuid) if uuid else ():
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(candidate), ""
        except pynvml.NVMLError:
            continue
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return None, "no NVML device: UUID lookup failed and CUDA_VISIBLE_DEVICES renumbers devices"
    try:
        return pynvml.nvmlDeviceGetHandleByIndex(index), ""
    except pynvml.NVMLError as exc:
        return None, f"no NVML device for cuda:{index}: {exc}"
