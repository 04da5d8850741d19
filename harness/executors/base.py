"""What every executor shares: the Outcome of a point, loading the workload, the interface.

An executor takes points and hands back one Outcome per point, whatever happened to it: a
failure is an Outcome with a status (oom, timeout, crash, error), never an exception, so the
sweep goes on and the failure becomes data.
"""
from __future__ import annotations

import abc
import importlib
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.env import device_name, package_version
from harness.errors import UserError
from harness.points import Point, PointResult

if TYPE_CHECKING:
    from types import ModuleType

    from harness.suite import Measure

# What a workload module may define beside its workload function: `closed_form_rows(point, settings)`.
CLOSED_FORMS = "closed_form_rows"

@dataclass
class Outcome:
    """What became of one point: its rows and samples when it ran, a status and message when not."""

    point: Point
    status: str  # "ok" when the workload returned (its rows may still carry their own statuses)
    rows: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # PointResult.files
    error: str = ""
    context: dict[str, str] = field(default_factory=dict)  # where it ran: host, node, device_name, versions
    seconds: float = 0.0  # wall time of the whole point, model build included


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def worker_context(point: Point, node: str = "") -> dict[str, str]:
    """Where a point ran, captured in the process that ran it."""
    host = socket.gethostname()
    return {
        "host": host,
        "node": node or host,
        "device_name": device_name(point.device),
        "torch_version": package_version("torch"),
        "transformers_version": package_version("transformers"),
    }


def _workload_module(spec: str) -> ModuleType:
    module_name = spec.partition(":")[0]
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"run.workload {spec!r}: cannot import {module_name}: {err}") from None


def load_workload(spec: str) -> Callable[[Point, Measure], PointResult]:
    """'package.module:function' -> the function. UserError when it cannot be imported."""
    module_name, _, function = spec.partition(":")
    workload = getattr(_workload_module(spec), function, None)
    if not callable(workload):
        raise UserError(f"run.workload {spec!r}: {module_name} has no function {function!r}")
    return workload


def load_closed_forms(spec: str) -> Callable[[Point, Measure], list[dict]] | None:
    """The workload module's optional `closed_form_rows(point, settings)`: the rows of a point
    that need no run (its FLOPs, bytes moved), which a failed point still gets; None when the
    module has none."""
    rows_for = getattr(_workload_module(spec), CLOSED_FORMS, None)
    return rows_for if callable(rows_for) else None


class Executor(abc.ABC):
    """Runs points and reports an Outcome for each, in the order they finish.

    The runner keeps at most `slots` points submitted at a time, so it can still skip points
    that an earlier failure makes pointless before they are handed out.
    """

    slots: int = 1

    def resolve_device(self, requested: str) -> str:
        """'auto' -> the device points will run on; UserError when 'cuda' cannot be had."""
        has_cuda = self.cuda_available()
        if requested == "auto":
            return "cuda" if has_cuda else "cpu"
        if requested == "cuda" and not has_cuda:
            raise UserError(f"device cuda requested but {self.where} has no CUDA device")
        return requested

    where: str = "this machine"

    @abc.abstractmethod
    def cuda_available(self) -> bool: ...

    @abc.abstractmethod
    def submit(self, point: Point) -> None:
        """Start running `point` (returns at once)."""

    @abc.abstractmethod
    def next_outcome(self) -> Outcome:
        """Block until a submitted point finishes; its Outcome."""

    def close(self) -> None:
        """Stop whatever still runs (on interrupt) and release resources."""
