"""What a failure is: the one place that turns an exception into a status (and a line).

The meters (a phase that raises), the train step, the profiler and the executors (a workload
that raises) all classify through `classify`, so an out-of-memory is `oom` wherever it happens
and the runner's skip-larger-after and the report's OOM frontier see it as such.
"""
from __future__ import annotations

import traceback

# Messages of out-of-memory errors that arrive as plain RuntimeErrors: torch's CPU and CUDA
# allocators, the C++ runtime, the kernel's refusal under an address-space cap.
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "std::bad_alloc")


def classify(exc: BaseException) -> str:
    """"oom" for any out-of-memory (Python's MemoryError, torch's OutOfMemoryError of any device,
    an allocator's message), else "error"."""
    if isinstance(exc, MemoryError) or any(c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__):
        return "oom"
    text = str(exc).lower()
    return "oom" if any(marker in text for marker in OOM_MARKERS) else "error"


def describe(exc: BaseException, where: bool = False) -> str:
    """One line for the `error` column: the exception's type and the first line of its message.

    where: for a whole point, whose row has no phase to name the failure: the whole message on one
    line and the innermost frame, so the cause can be found.
    """
    text = str(exc).strip()
    if not where:
        first = text.splitlines()[0] if text else ""
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    message = f"{type(exc).__name__}: {text.replace(chr(10), ' ')}" if text else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        message += f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})"
    return message[:2000]
