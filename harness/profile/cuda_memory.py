"""CUDA memory snapshots: every allocation of one phase call, with the Python stack that made it.

`torch.cuda.memory._record_memory_history` records the allocator's events while a phase runs
once; `_dump_snapshot` writes them as a pickle that https://pytorch.org/memory_viz shows as a
timeline of live tensors, each with its stack — which tensor filled the device is read off there.
When the call runs out of memory the snapshot is written all the same: the allocator's trace then
ends with the failed request, next to everything that was live when it failed.

These are the underscore functions torch documents for this purpose ("Understanding CUDA Memory
Usage" in the torch docs); they have no public alias.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

SNAPSHOT = "memory_snapshot.pickle"
OOM_SNAPSHOT = "memory_snapshot_oom.pickle"
MAX_ENTRIES = 100_000  # allocator events kept (a few kB each); older ones are dropped first


@dataclass(frozen=True)
class Snapshot:
    """Where the snapshot went and, when the call failed, the exception (re-raised by the caller)."""

    path: Path
    error: BaseException | None = None


def snapshot_call(run: Callable[[], object], out_dir: Path, device: torch.device,
                  setup: Callable[[], object] | None = None, max_entries: int = MAX_ENTRIES) -> Snapshot:
    """Run `run` once (after `setup`, untimed) with allocator history on; dump it to `out_dir`.

    The snapshot is named OOM_SNAPSHOT when the call raised an out-of-memory error, SNAPSHOT
    otherwise. An exception is returned in the Snapshot, not raised, so that it is dumped first.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if setup is not None:
        setup()
    torch.cuda.synchronize(device)
    torch.cuda.memory._record_memory_history(max_entries=max_entries, stacks="python", clear_history=True)
    error: BaseException | None = None
    try:
        run()
        torch.cuda.synchronize(device)
    except Exception as exc:  # the failed attempt's snapshot is the point of this function
        error = exc
    name = OOM_SNAPSHOT if isinstance(error, torch.cuda.OutOfMemoryError) else SNAPSHOT
    path = out_dir / name
    try:
        torch.cuda.memory._dump_snapshot(str(path))
    finally:
        torch.cuda.memory._record_memory_history(enabled=None)
    return Snapshot(path, error)
