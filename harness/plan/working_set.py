"""What each phase holds in memory: a dry run on fake tensors, the one memory predictor.

The model is built on the meta device, its weights become fake tensors (shapes only, no memory)
on a real device type, so attention takes the fused path it takes when run, not the meta
device's math path that holds every L x L score matrix, and it runs fbank, encoder, prefill and
one decode step while `LiveBytes` adds up every tensor alive at once. Per phase that gives its
working set: the peak of live tensors above what was live when it began (its output included,
the weights and the inputs of earlier phases not): what the memory meter measures as
`peak_mem_bytes`. Over the whole run it gives the peak beyond the weights and the waveform.

It leaves out what no tensor holds: kernels' private workspaces (the compiled scan's, FFT
plans), the allocator's cache and fragmentation, and the interpreter with torch itself (about
0.5 GB on a CPU). `harness.forecast` (before a long `generate`) and `harness.plan` (before a
sweep) both predict memory with it. A dry run costs about a second at any size or length (the
operators dispatched, not their sizes), so `working_set` runs a point's shape once at batch 1
and scales by its batch: the tensors a phase holds carry the batch dimension (within a few
percent of a dry run at that batch where a phase holds megabytes; kilobyte-sized decode steps
are overestimated).
"""
from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from harness.measure.flops import FlopCounter
from harness.points import Point
from models import build
from models.audio import SAMPLE_RATE
from models.phases import CHAIN as PHASES

if TYPE_CHECKING:
    from models import LALM


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensors created inside the block that are alive at the same time.

    Storages are counted once however many views share them, and released when their last tensor
    dies. Storages in `known` (weights, inputs) are never counted. `mark()` starts a new phase:
    `phase_peak` is then the peak above what was live at the mark.
    """

    def __init__(self, known: set[int]) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._start = self.phase_peak = 0
        self._known = known
        self._refs: dict[int, list[int]] = {}  # storage key -> [live tensors, bytes]

    def mark(self) -> None:
        self._start, self.phase_peak = self.live, 0

    def _release(self, key: int) -> None:
        entry = self._refs[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self._refs[key]

    def __torch_dispatch__(self, func: Callable[..., Any], types: object, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            key = tensor.untyped_storage()._cdata
            if key in self._known:
                continue
            entry = self._refs.setdefault(key, [0, 0])
            if entry[0] == 0:
                entry[1] = tensor.untyped_storage().nbytes()
                self.live += entry[1]
                self.peak = max(self.peak, self.live)
                self.phase_peak = max(self.phase_peak, self.live - self._start)
            entry[0] += 1
            weakref.finalize(tensor, self._release, key)
        return out


def storage_keys(*tensors: torch.Tensor) -> set[int]:
    return {t.untyped_storage()._cdata for t in tensors}


def phase_calls(model: LALM, wave: torch.Tensor, prompt: torch.Tensor) -> list[tuple[str, Callable[[], None]]]:
    """(phase, call) in run order; each call feeds on the previous one's output.

    wave (B, S) at 16 kHz and prompt (B, P) on the model's device.
    """
    held: dict[str, object] = {}

    def fbank() -> None:
        held["feats"] = model.features(wave)

    def encoder() -> None:
        held["enc"] = model.encode(held.pop("feats"))

    def prefill() -> None:
        held["logits"], held["cache"] = model.prefill(held.pop("enc"), prompt)

    def decode() -> None:
        model.decode_step(held["cache"], held["logits"].argmax(-1))

    return list(zip(PHASES, (fbank, encoder, prefill, decode)))


@dataclass(frozen=True)
class DryRun:
    """What a dry run of every phase showed."""

    peak_bytes: int  # live tensors at the peak of the whole run, beyond the weights and the waveform
    phase_bytes: dict[str, int]  # phase -> its working set (peak above what was live when it began)
    flops: dict[str, int]  # phase -> counted FLOPs (empty unless asked for)


def dry_run(variant: str, size: str, dtype: torch.dtype, device: torch.device, batch: int, num_samples: int,
            prompt_tokens: int, count_flops: bool = False) -> DryRun:
    """Run the variant at `size` and `dtype` on fake tensors of `device` over a (batch, num_samples)
    waveform and a (batch, prompt_tokens) prompt."""
    meta = build(variant, size, device="meta", dtype=dtype)
    with FakeTensorMode() as mode:
        # nn.Module.to cannot make fake tensors; _apply maps every parameter and buffer.
        fake = meta._apply(lambda tensor: mode.from_tensor(tensor).to(device))
        wave = torch.zeros(batch, num_samples, device=device)
        prompt = torch.zeros(batch, prompt_tokens, dtype=torch.long, device=device)
        known = storage_keys(wave, prompt, *fake.parameters(), *fake.buffers())
        flops, phase_bytes = {}, {}
        with torch.inference_mode(), LiveBytes(known) as live:
            for phase, call in phase_calls(fake, wave, prompt):
                live.mark()
                if count_flops:
                    with FlopCounter() as counter:
                        call()
                    flops[phase] = counter.result.total
                else:
                    call()
                phase_bytes[phase] = live.phase_peak
    return DryRun(live.peak, phase_bytes, flops)


def fake_device(device: str) -> torch.device:
    """The device type to fake `device` on: itself where this torch supports it, else the CPU
    (a CPU-only torch cannot make CUDA tensors, fake or not; both take fused attention)."""
    target = torch.device(device)
    return target if target.type == "cpu" or torch.cuda.is_available() else torch.device("cpu")


@functools.cache
def _batch_one(variant: str, size: str, dtype: str, device: str, num_samples: int, prompt_tokens: int) -> DryRun:
    return dry_run(variant, size, getattr(torch, dtype), fake_device(device), 1, num_samples, prompt_tokens)


def working_set(point: Point) -> DryRun:
    """The dry run of a point: one batch-1 dry run per shape (cached: a suite's points share
    shapes), scaled by its batch."""
    one = _batch_one(point.variant, point.size, point.dtype, point.device, round(point.audio_seconds * SAMPLE_RATE),
                     point.prompt_tokens)
    batch = point.batch_size
    return DryRun(one.peak_bytes * batch, {p: b * batch for p, b in one.phase_bytes.items()}, {})
