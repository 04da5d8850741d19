"""Before a long clip runs: its peak memory and time, predicted; while it runs, a progress display.

Memory comes from a dry run on fake tensors (shapes only, no memory, about a second at any size
or length): the model is built on the meta device, its weights become fake tensors on the real
model's device (so attention takes the fused path it takes there, not the meta device's math
path that holds every L x L score matrix), and it runs through fbank, encoder, prefill and one
decode step while `LiveBytes` adds up every tensor alive at once. Peak = the weights + the
waveform + that peak. Checked on a CPU against `generate`'s peak RSS above that of a 1 s clip
(tiny models, 240 s): 0.97x for ast+llama, 0.77x for dass+mamba. It leaves out what no tensor
holds: kernels' private workspaces (the compiled scan's, FFT plans), the allocator's cache and
fragmentation, and the interpreter with torch itself (about 0.5 GB on a CPU). Read it as
"roughly, a bit more".

Time comes from a trial on the real model: after a 1 s warm-up, the first `TRIAL_SECONDS` of the
clip run through every phase, and each phase's time is scaled by its FLOPs at full length over its
FLOPs in the trial (both counted in the dry runs, so attention's quadratic growth is in the
ratio). Checked the same way on a 2-core machine shared with other work (load 4-5), a few runs
each: ast+llama 19-30 s predicted for 9-22 s measured, dass+mamba 0.8-2.0 s for 2.2-3.0 s. Read
it as within a factor of 2-3 either way: the trial and the run see different loads.
"""
from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from harness.measure.flops import FlopCounter
from models import build
from models.audio import SAMPLE_RATE

if TYPE_CHECKING:
    from rich.progress import Progress

    from models import LALM

PHASES = ("fbank", "encoder", "prefill", "decode")
TRIAL_SECONDS = 10.0
WARMUP_SECONDS = 1.0
# From this length on, generate forecasts and shows progress: the trial is then at most a sixth
# of the work, and below it a clip runs in seconds on the tiny models.
LONG_INPUT_SECONDS = 60.0


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensors created inside the block that are alive at the same time.

    Storages are counted once however many views share them, and released when their last tensor
    dies. Storages in `known` (weights, inputs) are never counted.
    """

    def __init__(self, known: set[int]) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._known = known
        self._refs: dict[int, list[int]] = {}  # storage key -> [live tensors, bytes]

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
            entry[0] += 1
            weakref.finalize(tensor, self._release, key)
        return out


def _storage_keys(*tensors: torch.Tensor) -> set[int]:
    return {t.untyped_storage()._cdata for t in tensors}


def _phase_calls(model: LALM, wave: torch.Tensor, prompt: torch.Tensor) -> list[tuple[str, Callable[[], None]]]:
    """(phase, call) in run order; each call feeds on the previous one's output.

    wave (1, S) at 16 kHz and prompt (1, P) on the model's device.
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
    """What a dry run of every phase on `num_samples` samples showed."""

    peak_bytes: int  # live tensors at the peak, beyond the weights and the waveform
    flops: dict[str, int]  # phase -> counted FLOPs


def dry_run(model: LALM, num_samples: int, prompt_tokens: int) -> DryRun:
    """Run `model`'s variant, size and dtype on fake tensors over a (1, num_samples) waveform."""
    meta = build(model.spec.variant, model.spec.size, device="meta", dtype=next(model.parameters()).dtype)
    with FakeTensorMode() as mode:
        # nn.Module.to cannot make fake tensors; _apply maps every parameter and buffer.
        fake = meta._apply(lambda tensor: mode.from_tensor(tensor).to(model.device))
        wave = torch.zeros(1, num_samples, device=model.device)
        prompt = torch.zeros(1, prompt_tokens, dtype=torch.long, device=model.device)
        known = _storage_keys(wave, prompt, *fake.parameters(), *fake.buffers())
        flops = {}
        with torch.inference_mode(), LiveBytes(known) as live:
            for phase, call in _phase_calls(fake, wave, prompt):
                with FlopCounter() as counter:
                    call()
                flops[phase] = counter.result.total
    return DryRun(live.peak, flops)


def _timed_phases(model: LALM, wave: torch.Tensor, prompt: torch.Tensor) -> dict[str, float]:
    """Seconds each phase takes on the real model."""
    times = {}
    with torch.inference_mode():
        for phase, call in _phase_calls(model, wave.to(model.device), prompt):
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            start = time.perf_counter()
            call()
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            times[phase] = time.perf_counter() - start
    return times


@dataclass(frozen=True)
class Forecast:
    peak_bytes: int  # weights + waveform + live tensors at the peak
    seconds: dict[str, float]  # phase -> predicted wall time; "decode" covers every step

    def describe(self) -> str:
        return f"predicted peak memory ~{_size(self.peak_bytes)}, time ~{_duration(sum(self.seconds.values()))}"


def _size(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:.1f} GiB" if num_bytes >= 2**30 else f"{num_bytes / 2**20:.0f} MiB"


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def forecast(model: LALM, wave: torch.Tensor, prompt: torch.Tensor, new_tokens: int) -> Forecast:
    """Predict running `model` on wave (1, S) at 16 kHz with prompt (1, P) for `new_tokens` tokens."""
    num_samples, prompt_tokens = wave.shape[-1], prompt.shape[-1]
    trial_samples = min(num_samples, round(TRIAL_SECONDS * SAMPLE_RATE))
    full, trial = dry_run(model, num_samples, prompt_tokens), dry_run(model, trial_samples, prompt_tokens)
    _timed_phases(model, wave[:, : round(WARMUP_SECONDS * SAMPLE_RATE)], prompt)
    measured = _timed_phases(model, wave[:, :trial_samples], prompt)
    seconds = {}
    for phase in PHASES:
        ratio = full.flops[phase] / trial.flops[phase] if trial.flops[phase] else num_samples / trial_samples
        seconds[phase] = measured[phase] * ratio
    seconds["decode"] *= new_tokens - 1
    resident = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers(), wave, prompt))
    return Forecast(resident + full.peak_bytes, seconds)


class PhaseProgress:
    """A progress bar on stderr over the forecast's time, advanced as each phase finishes.

    Without a forecast (a short clip), or when stderr is not a terminal, it shows nothing.
    """

    def __init__(self, predicted: Forecast | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._seconds = predicted.seconds if predicted else dict.fromkeys(PHASES, 0.0)
        total = sum(self._seconds.values())
        console = Console(stderr=True)
        self._progress: Progress = Progress(
            SpinnerColumn(), TextColumn("{task.description:<8}"), BarColumn(), TimeElapsedColumn(),
            TextColumn(f"of ~{_duration(total)} predicted"), console=console, transient=True,
            disable=predicted is None or not console.is_terminal,
        )
        self._task = self._progress.add_task(PHASES[0], total=total)

    def __enter__(self) -> PhaseProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def done(self, phase: str) -> None:
        """`phase` finished: advance by its predicted time and name the next phase."""
        following = PHASES[PHASES.index(phase) + 1:]
        self._progress.update(self._task, advance=self._seconds[phase],
                              description=following[0] if following else "done")


def progress_for(model: LALM, wave: torch.Tensor, prompt: torch.Tensor, new_tokens: int, source: str) -> PhaseProgress:
    """For a clip of `LONG_INPUT_SECONDS` or more, print its forecast to stderr (one line naming
    `source`) and return a progress display for its run; for a shorter clip, one that shows nothing.
    """
    seconds = wave.shape[-1] / SAMPLE_RATE
    if seconds < LONG_INPUT_SECONDS:
        return PhaseProgress(None)
    predicted = forecast(model, wave, prompt, new_tokens)
    print(f"{source}: {seconds:.1f} s of audio; {model.spec.variant} ({model.spec.size}) on {model.device}: "
          f"{predicted.describe()}", file=sys.stderr)
    return PhaseProgress(predicted)
