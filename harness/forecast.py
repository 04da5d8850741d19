"""Before a long clip runs: its peak memory and time, predicted; while it runs, a progress display.

Memory comes from a dry run on fake tensors (`harness.plan.working_set`, the predictor `plan`
uses too: shapes only, no memory, about a second at any size or length): peak = the weights +
the waveform + the live tensors at the run's peak. Checked on a CPU against `generate`'s peak RSS
above that of a 1 s clip (tiny models, 240 s): 0.97x for ast+llama, 0.77x for dass+mamba. It
leaves out what no tensor holds (kernels' workspaces, the allocator's cache, the interpreter):
read it as "roughly, a bit more".

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from harness.plan import working_set
from harness.plan.working_set import PHASES, DryRun, LiveBytes, phase_calls  # noqa: F401 (LiveBytes: still importable from here)
from models.audio import SAMPLE_RATE

if TYPE_CHECKING:
    from rich.progress import Progress

    from models import LALM

TRIAL_SECONDS = 10.0
WARMUP_SECONDS = 1.0
# From this length on, generate forecasts and shows progress: the trial is then at most a sixth
# of the work, and below it a clip runs in seconds on the tiny models.
LONG_INPUT_SECONDS = 60.0


def dry_run(model: LALM, num_samples: int, prompt_tokens: int) -> DryRun:
    """Run `model`'s variant, size and dtype on fake tensors over a (1, num_samples) waveform."""
    return working_set.dry_run(model.spec.variant, model.spec.size, next(model.parameters()).dtype, model.device,
                               1, num_samples, prompt_tokens, count_flops=True)


def _timed_phases(model: LALM, wave: torch.Tensor, prompt: torch.Tensor) -> dict[str, float]:
    """Seconds each phase takes on the real model."""
    times = {}
    with torch.inference_mode():
        for phase, call in phase_calls(model, wave.to(model.device), prompt):
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
