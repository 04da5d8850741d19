"""Profile the phases of one model on one input: files on disk, rows for the results table.

`profile_point` is what both `lalm-bench profile` and a suite's `profile = true` points call.
Out folder layout:

    <out_dir>/summary.md                 the check, role roll-up, module tree, top operators per phase
    <out_dir>/<phase>/trace.json         Chrome / Perfetto trace (chrome://tracing, ui.perfetto.dev)
    <out_dir>/<phase>/modules.csv        the module breakdown (harness.profile.tables.MODULE_COLUMNS)
    <out_dir>/<phase>/operators.csv      every operator's self time (harness.profile.operators.COLUMNS)
    <out_dir>/<phase>/memory_snapshot.pickle       CUDA: allocator history of one call
    <out_dir>/<phase>/memory_snapshot_oom.pickle   CUDA: the same, of a call that ran out of memory
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from harness.errors import UserError
from harness.failure import classify, describe
from harness.measure.chain import PHASE_ORDER, PhaseFailed, PhaseInputs
from harness.measure.phases import PhaseRunner, PhaseSettings
from harness.profile.overhead import measure_cost
from harness.profile.phase import MODULES, PhaseProfileFailed, ProfileSettings, profile_phase
from harness.profile.render import phase_text
from harness.profile.rows import failure_rows, profile_rows
from harness.profile.structure import plan
from harness.profile.tables import module_frame

SUMMARY = "summary.md"


def describe_point(lalm: object, inputs: PhaseInputs, device: torch.device) -> str:
    """'dass+mamba tiny, batch 1 x 10 s audio, prompt 8, cpu' — the heading of every phase."""
    spec = lalm.spec
    return (f"{spec.variant} {spec.size}, batch {inputs.batch_size} x {inputs.audio_seconds:g} s audio, "
            f"prompt {inputs.prompt_ids.shape[1]}, {device}")


def _failed(phase: str, exc: BaseException, device: torch.device, title: str,
            snapshot: Path | None = None) -> tuple[list[dict], str]:
    """Rows and summary text for a phase that could not be profiled. A phase whose input failed is
    an "error" (the failure itself belongs to the phase that computes the input)."""
    status = "error" if isinstance(exc, PhaseFailed) else classify(exc)
    if status == "oom" and device.type == "cuda":
        torch.cuda.empty_cache()
    message = describe(exc)
    where = f"; memory snapshot of the failed call: `{snapshot}`" if snapshot else ""
    text = f"## {phase}: {title}\n\n{status}: {message}{where}"
    return failure_rows(phase, status, message, str(snapshot or "")), text


def profile_point(
    lalm: object,
    inputs: PhaseInputs,
    phases: Sequence[str],
    out_dir: Path,
    settings: ProfileSettings = ProfileSettings(),
    device: str | torch.device | None = None,
) -> list[dict]:
    """Profile each of `phases` of `lalm` (the models.LALM interface) on `inputs` into `out_dir`.

    Returns results-table rows (phase, module, metric, value, unit, lo, hi, n, status, error,
    source, note; see `harness.profile.rows`); the caller adds the point's identity. A phase that
    fails becomes a row with its status (oom, error), never an exception.
    """
    unknown = [p for p in phases if p not in PHASE_ORDER]
    if unknown:
        raise UserError(f"unknown phase(s) {unknown}; valid: {', '.join(PHASE_ORDER)}")
    device = torch.device(device) if device is not None else inputs.wave.device
    runner = PhaseRunner(lalm, inputs, PhaseSettings(phases=tuple(phases), memory=False, energy=False), device)
    parts = plan(lalm)
    title = describe_point(lalm, inputs, device)
    rows: list[dict] = []
    texts: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    cost = measure_cost() if device.type != "cuda" else None  # once for every phase of the point
    with torch.no_grad():
        for phase in (p for p in PHASE_ORDER if p in phases):
            try:
                profile = profile_phase(runner.work(phase), phase, parts, device, out_dir / phase, settings, cost)
            except PhaseFailed as exc:
                failed_rows, text = _failed(phase, exc, device, title)
                rows, texts = rows + failed_rows, texts + [text]
                continue
            except PhaseProfileFailed as exc:
                failed_rows, text = _failed(phase, exc.cause, device, title, exc.snapshot)
                rows, texts = rows + failed_rows, texts + [text]
                continue
            profile.files["modules"] = out_dir / phase / MODULES
            module_frame(profile).to_csv(profile.files["modules"], index=False)
            rows += profile_rows(profile)
            texts.append(phase_text(profile, title))
    (out_dir / SUMMARY).write_text(f"# Profile: {title}\n\n" + "\n\n".join(texts) + "\n")
    return rows


def profile_files(out_dir: Path, prefix: str = "profile") -> dict[str, bytes]:
    """Every file under `out_dir` as {"<prefix>/<relative path>": content}: the form a workload
    hands files back in (`PointResult.files`), so they reach the run folder from any worker."""
    return {f"{prefix}/{path.relative_to(out_dir).as_posix()}": path.read_bytes()
            for path in sorted(out_dir.rglob("*")) if path.is_file()}
