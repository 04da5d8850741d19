"""Peak memory of one phase: a context manager per device, `measurements()` after it exits.

    with memory_meter(device) as meter:
        run_phase()
    rows = meter.measurements()

`peak_mem_bytes` is the phase's own footprint: its peak above what was resident when it began
(weights, inputs and caches made by earlier phases are in the baseline, which the note states).

CPU: peak RSS growth. The kernel's high-water mark is exact; on Linux it is reset at the start by
writing "5" to /proc/self/clear_refs, then read from VmHWM. Where that is not permitted,
`getrusage().ru_maxrss` still gives the exact peak when the phase set a new lifetime maximum;
otherwise the peak is the largest RSS seen by a background sampler, which can miss short spikes.
RSS counts pages touched: memory the allocator reuses from its free lists does not grow it.

CUDA: `torch.cuda.max_memory_allocated` (peak_mem_bytes) and `max_memory_reserved`
(reserved_mem_bytes, the allocator pool at its peak, absolute) after resetting the peak stats and
emptying the cache, plus NVML's memory for this process (device_mem_bytes, includes the CUDA
context), sampled in the background. When NVML cannot see the process (containers with their own
pid namespace), device-wide used memory is reported instead, and `source` says so.
"""
from __future__ import annotations

import gc
import os
import resource
import sys
import threading
from collections.abc import Callable

import psutil
import torch

from harness.measure.measurement import Measurement
from harness.measure.nvml import nvml_handle, nvml_module

CLEAR_REFS = "/proc/self/clear_refs"
PROC_STATUS = "/proc/self/status"

# The smallest footprint each source tells apart from none, by (source, metric): (bytes, why).
# CPU: RSS grows only when a phase touches pages the process has not touched (or has given back).
# glibc's malloc serves blocks below its mmap threshold from heap memory that earlier phases may
# already have made resident, and the threshold rises, as larger blocks are freed, up to
# DEFAULT_MMAP_THRESHOLD_MAX (4 MiB * sizeof(long) = 32 MiB on 64-bit Linux). A phase footprint
# below that can read anywhere from 0 to its size: two `quick` runs of the same code read 4 KiB
# and 4.5 MiB for one point. CUDA: the caching allocator rounds every block up to 512 bytes
# (kMinBlockSize) and reserves pool segments of at least 2 MiB.
_CPU_RSS = (32 * 2**20, "glibc malloc reuses resident heap below its mmap threshold, which adapts up to 32 MiB")
RESOLUTIONS: dict[tuple[str, str], tuple[float, str]] = {
    ("proc.VmHWM", "peak_mem_bytes"): _CPU_RSS,
    ("getrusage.ru_maxrss", "peak_mem_bytes"): _CPU_RSS,
    ("psutil.rss", "peak_mem_bytes"): _CPU_RSS,
    ("torch.cuda.max_memory_allocated", "peak_mem_bytes"): (512, "the CUDA caching allocator's block rounding"),
    ("torch.cuda.max_memory_reserved", "reserved_mem_bytes"): (2 * 2**20, "the CUDA caching allocator's smallest segment"),
}


class PeakSampler:
    """Calls `read()` every `interval_s` in a daemon thread and keeps the largest value.

    It reads once at start and once at stop, so a value held to the end is never missed. A read
    that raises ends sampling; `error` keeps its message.
    """

    def __init__(self, read: Callable[[], int], interval_s: float):
        self._read = read
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-sampler", daemon=True)
        self.peak = -1
        self.count = 0
        self.error = ""

    def _sample(self) -> None:
        try:
            self.peak = max(self.peak, int(self._read()))
            self.count += 1
        except Exception as exc:  # a meter must never take the phase down with it
            self.error = f"{type(exc).__name__}: {exc}"
            self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def start(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        if not self.error:
            self._sample()
        return self.peak


def reset_high_water_mark(path: str = CLEAR_REFS) -> str:
    """Reset the kernel's peak RSS (VmHWM) for this process; "" on success, else why not."""
    try:
        with open(path, "w") as f:
            f.write("5")
        return ""
    except OSError as exc:
        return f"cannot reset VmHWM ({path}: {exc.strerror or exc})"


def read_high_water_mark(path: str = PROC_STATUS) -> int | None:
    """VmHWM in bytes, or None where the kernel does not report it."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def max_rss_bytes() -> int:
    """Lifetime peak RSS from getrusage (KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class CpuMemoryMeter:
    """Peak RSS growth of this process during the `with` block (see the module docstring)."""

    def __init__(self, interval_s: float = 0.002, clear_refs: str = CLEAR_REFS, proc_status: str = PROC_STATUS):
        self._interval_s = interval_s
        self._clear_refs = clear_refs
        self._proc_status = proc_status
        self._process = psutil.Process()
        self._result: Measurement | None = None

    def __enter__(self) -> CpuMemoryMeter:
        gc.collect()
        self._rss0 = self._process.memory_info().rss
        self._reset_problem = reset_high_water_mark(self._clear_refs)
        self._maxrss0 = max_rss_bytes()
        self._sampler = PeakSampler(lambda: self._process.memory_info().rss, self._interval_s).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        sampled = self._sampler.stop()
        hwm = None if self._reset_problem else read_high_water_mark(self._proc_status)
        maxrss = max_rss_bytes()
        sampled_note = f"RSS sampled every {self._interval_s * 1e3:g} ms ({self._sampler.count} samples)"
        if hwm is not None:
            peak, source, how = max(hwm, sampled), "proc.VmHWM", "kernel high-water mark, reset at phase start"
        elif maxrss > self._maxrss0:
            peak, source = max(maxrss, sampled), "getrusage.ru_maxrss"
            how = f"{self._reset_problem or 'no VmHWM'}; the phase set a new lifetime peak, so ru_maxrss is exact"
        elif self._sampler.error:
            self._result = Measurement.nan("peak_mem_bytes", "B", f"RSS sampling failed: {self._sampler.error}",
                                           source="psutil.rss")
            return
        else:
            peak, source = sampled, "psutil.rss"
            how = f"{self._reset_problem or 'no VmHWM'}; {sampled_note}, may miss shorter spikes"
        peak = max(peak, self._rss0)  # the start itself is inside the phase
        note = f"RSS growth above {self._rss0} B resident at phase start; {how}"
        self._result = Measurement("peak_mem_bytes", float(peak - self._rss0), "B", source=source, note=note)

    def measurements(self) -> list[Measurement]:
        if self._result is None:
            return [Measurement.nan("peak_mem_bytes", "B", "memory meter did not run", source="psutil.rss")]
        return [self._result]


class CudaMemoryMeter:
    """Allocator peaks and NVML memory for one CUDA device during the `with` block."""

    def __init__(self, device: str | torch.device, interval_s: float = 0.01):
        self._device = torch.device(device)
        self._interval_s = interval_s
        self._results: list[Measurement] = []

    def _nvml_reader(self) -> tuple[Callable[[], int] | None, str, str]:
        """(read, source, note): this process's NVML memory, else device-wide used memory."""
        handle, reason = nvml_handle(self._device)
        if handle is None:
            return None, "nvml", reason
        pynvml = nvml_module()
        pid = os.getpid()

        def process_bytes() -> int:
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == pid and proc.usedGpuMemory is not None:
                    return proc.usedGpuMemory
            raise LookupError(f"pid {pid} not in NVML's process list")

        try:
            process_bytes()
            return process_bytes, "nvml.process", "this process's device memory, CUDA context included"
        except (pynvml.NVMLError, LookupError) as exc:
            return (lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used), "nvml.device_used", (
                f"process lookup failed ({exc}), e.g. a container's own pid namespace; device-wide used "
                "memory includes other processes"
            )

    def __enter__(self) -> CudaMemoryMeter:
        gc.collect()
        torch.cuda.synchronize(self._device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self._device)
        self._allocated0 = torch.cuda.memory_allocated(self._device)
        read, self._nvml_source, self._nvml_note = self._nvml_reader()
        self._sampler = PeakSampler(read, self._interval_s).start() if read else None
        return self

    def __exit__(self, *exc_info: object) -> None:
        torch.cuda.synchronize(self._device)
        peak_allocated = torch.cuda.max_memory_allocated(self._device)
        peak_reserved = torch.cuda.max_memory_reserved(self._device)
        self._results = [
            Measurement("peak_mem_bytes", float(peak_allocated - self._allocated0), "B",
                        source="torch.cuda.max_memory_allocated",
                        note=f"peak allocated above {self._allocated0} B allocated at phase start"),
            Measurement("reserved_mem_bytes", float(peak_reserved), "B", source="torch.cuda.max_memory_reserved",
                        note="caching allocator pool at its peak, absolute (weights and earlier phases included)"),
            self._nvml_measurement(),
        ]

    def _nvml_measurement(self) -> Measurement:
        if self._sampler is None:
            return Measurement.nan("device_mem_bytes", "B", self._nvml_note, source=self._nvml_source)
        peak = self._sampler.stop()
        if self._sampler.error:
            return Measurement.nan("device_mem_bytes", "B", f"NVML read failed: {self._sampler.error}",
                                   source=self._nvml_source)
        note = f"{self._nvml_note}; absolute, sampled every {self._interval_s * 1e3:g} ms"
        return Measurement("device_mem_bytes", float(peak), "B", source=self._nvml_source, note=note)

    def measurements(self) -> list[Measurement]:
        if not self._results:
            return [Measurement.nan("peak_mem_bytes", "B", "memory meter did not run",
                                    source="torch.cuda.max_memory_allocated")]
        return list(self._results)


class UnsupportedMemoryMeter:
    """For devices without a memory meter: a NaN with the reason."""

    def __init__(self, device: torch.device):
        self._reason = f"no memory meter for device type {device.type!r}"

    def __enter__(self) -> UnsupportedMemoryMeter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def measurements(self) -> list[Measurement]:
        return [Measurement.nan("peak_mem_bytes", "B", self._reason)]


def memory_meter(device: str | torch.device) -> CpuMemoryMeter | CudaMemoryMeter | UnsupportedMemoryMeter:
    """The memory meter for `device`: RSS on the CPU, allocator + NVML on CUDA."""
    device = torch.device(device)
    if device.type == "cpu":
        return CpuMemoryMeter()
    if device.type == "cuda" and torch.cuda.is_available():
        return CudaMemoryMeter(device)
    return UnsupportedMemoryMeter(device)
