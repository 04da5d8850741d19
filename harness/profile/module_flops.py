"""FLOPs per module, exclusive of child modules, on the same module paths as the time breakdown.

One untimed call of the phase runs under the counter `harness.measure.flops` sets up (torch's
FlopCounterMode with the formulas it registers for what torch lacks: CPU attention, the FFT; the
scan registers its own) while the module hooks of `ranges.ModuleRanges` track which module is
innermost. At every module boundary the counter's running per-operator totals are read, and
what was counted since the previous boundary belongs to the module innermost in between. So each
FLOP lands on exactly one path, split-out operators (`structure.KERNEL_OPS`) on their module's
virtual child, and the paths sum to the counter's total. The convention is the counter's: one
multiply-add = 2 FLOPs, elementwise work not counted (see `harness.measure.flops`).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.measure.flops import flop_counter_mode
from harness.profile.ranges import ModuleRanges
from harness.profile.structure import UNATTRIBUTED, Part, kernel_of, kernel_path


class _Attributor:
    """Reads the counter's totals at each boundary and credits the difference to a path."""

    def __init__(self, counter: FlopCounterMode):
        self._counter = counter
        self._seen: dict[str, int] = {}
        self.by_path: dict[str, int] = defaultdict(int)

    def credit(self, owner: str) -> None:
        owner = owner or UNATTRIBUTED
        totals = {str(op): n for op, n in self._counter.get_flop_counts().get("Global", {}).items()}
        for op, n in totals.items():
            added = n - self._seen.get(op, 0)
            if not added:
                continue
            kernel = kernel_of(op) if owner != UNATTRIBUTED else None
            self.by_path[kernel_path(owner, kernel[0]) if kernel else owner] += added
        self._seen = totals


def module_flops(run: Callable[[], object], parts: Sequence[tuple[nn.Module, Part]],
                 setup: Callable[[], object] | None = None) -> dict[str, int]:
    """FLOPs of one call of `run` (after `setup`, not counted) per module path, exclusive of child
    modules; split-out operators on their virtual child paths, the rest on UNATTRIBUTED."""
    if setup is not None:
        setup()
    counter = flop_counter_mode()
    attributor = _Attributor(counter)
    with torch.no_grad(), counter, ModuleRanges(parts, ranges=False, on_boundary=attributor.credit):
        run()
        attributor.credit("")
    return {path: n for path, n in attributor.by_path.items() if n}
