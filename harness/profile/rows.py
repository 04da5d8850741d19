"""A phase profile as rows of the results table (`harness.schema`).

Rows carry the phase and a `module`:
- a module path ("lm.model.model.layers.0.self_attn", "encoder.stages.2.1.op/scan",
  "(unattributed)"): metrics latency_ms (self time per phase call; lo/hi = p10/p90 over the
  profiled repeats), share (of the profiled phase), flops and flop_rate (FLOP/s achieved), and on
  CUDA host_time_ms (the host's self time, next to the kernel time in latency_ms);
- a rolled-up group, "group:<component>/<role>" (e.g. "group:lm/attention"): the same metrics
  summed, for 'where the time goes' plots across variants and audio lengths;
- "" (the phase itself): profile_overhead = attributed phase time / unprofiled median - 1, the
  check that the breakdown is the phase's own time (see `harness.profile.phase`), and on the CPU
  instrumentation_ms, the measured instrumentation cost per call taken out of the module times
  before the check (`harness.profile.overhead`).
Module rows of one phase sum to the profiled phase time, and so do its group rows: never add
the two kinds together.
"""
from __future__ import annotations

import math

from harness.measure.measurement import Measurement
from harness.profile.phase import PhaseProfile
from harness.profile.tables import group_frame, module_frame

PROFILER_SOURCE = "torch.profiler"
FLOPS_SOURCE = "torch.FlopCounterMode"
UNITS = {"latency_ms": "ms", "host_time_ms": "ms", "share": "1", "flops": "FLOP", "flop_rate": "FLOP/s",
         "profile_overhead": "1", "instrumentation_ms": "ms", "profiler_overhead": "1"}


HOOKS_SOURCE = "module hooks"


def _time_source(profile: PhaseProfile) -> str:
    return f"{PROFILER_SOURCE} (CUDA kernel time)" if profile.breakdown.device else f"{HOOKS_SOURCE} (host time)"


def _figure(metric: str, value: float, source: str, note: str, n: int = 1, lo: float = math.nan,
            hi: float = math.nan) -> Measurement:
    if math.isnan(value):
        return Measurement.nan(metric, UNITS[metric], note, source=source)
    return Measurement(metric, float(value), UNITS[metric], lo=lo, hi=hi, n=n, source=source, note=note)


def _measurements(profile: PhaseProfile, row: dict, what: str) -> list[Measurement]:
    """latency_ms, share, [host_time_ms on CUDA], [flops, flop_rate] of one module or group row."""
    b = profile.breakdown
    n, mean_of = b.repeats, f"mean of the {b.averaged} of {b.repeats} profiled calls nearest the median"
    time_source = _time_source(profile)
    out = [
        _figure("latency_ms", row["time_ms"], time_source, f"self time, {mean_of}; {what}", n,
                row.get("lo_ms", math.nan), row.get("hi_ms", math.nan)),
        _figure("share", row["share"], time_source, f"of the profiled phase time; {what}", n),
    ]
    if profile.breakdown.device:
        out.append(_figure("host_time_ms", row["host_ms"], f"{PROFILER_SOURCE} (host time)",
                           f"host self time, {mean_of}; {what}", n))
    if profile.flops is not None:
        out.append(_figure("flops", row["flops"], FLOPS_SOURCE, f"exclusive of child modules; {what}"))
        if row["flops"] > 0:
            out.append(_figure("flop_rate", row["flop_rate"], f"{FLOPS_SOURCE} / {time_source}",
                               f"flops / latency_ms; {what}", n))
    return out


def _module_what(row: dict) -> str:
    what = f"role {row['role']}; {row['calls']:g} calls per phase call"
    return what + (f"; operator {row['operator']}" if row["operator"] else "")


def overhead_measurements(profile: PhaseProfile) -> list[Measurement]:
    """The sum-to-phase check as a figure, with both times and the verdict in its note, and (when
    it was taken out) the instrumentation cost per call."""
    verdict = "faithful" if profile.faithful else "distorted"
    ref = profile.reference
    taken_out = (f" after taking out {profile.instrumentation_ms:.4g} ms of instrumentation"
                 if profile.cost is not None else "")
    note = (f"{verdict} (limit ±{profile.settings.faithful_within:.0%}): module rows sum to "
            f"{profile.attributed_ms:.4g} ms{taken_out} against {ref.median:.4g} ms unprofiled "
            f"(median of {len(ref.samples_ms)} calls, {ref.stop_reason})")
    n = profile.breakdown.repeats
    out = [_figure("profile_overhead", profile.overhead, f"{_time_source(profile)} / {ref.source}", note, n=n)]
    if not math.isnan(profile.profiler_ms):
        out.append(_figure("profiler_overhead", profile.profiler_overhead, f"{PROFILER_SOURCE} / {ref.source}",
                           f"the profiler pass ran {profile.profiler_ms:.4g} ms a call, an event per operator: the "
                           "trace's and operator table's calls are this much slower than unprofiled ones", n=n))
    if profile.cost is not None:
        c = profile.cost
        out.append(_figure("instrumentation_ms", profile.instrumentation_ms, "harness.profile.overhead",
                           f"per phase call: the timing pass's hooks, {c.timing_range.total_us:.3g} us per module "
                           "call as measured in this phase with half of them attached", n=n))
    return out


def profile_rows(profile: PhaseProfile) -> list[dict]:
    """All rows of one phase profile (module, group and phase rows; see the module docstring)."""
    modules = module_frame(profile)
    rows = [m.to_row(phase=profile.phase, module="") for m in overhead_measurements(profile)]
    for row in modules.to_dict("records"):
        rows += [m.to_row(phase=profile.phase, module=row["module"])
                 for m in _measurements(profile, row, _module_what(row))]
    for row in group_frame(modules).to_dict("records"):
        what = f"sum of the {row['component']} rows in role {row['role']}"
        rows += [m.to_row(phase=profile.phase, module=row["group"]) for m in _measurements(profile, row, what)]
    return rows


def failure_rows(phase: str, status: str, error: str, snapshot: str = "") -> list[dict]:
    """One row saying the phase could not be profiled (status oom or error), and where its snapshot is."""
    note = f"{error}; memory snapshot of the failed call: {snapshot}" if snapshot else error
    return [Measurement.nan("profile_overhead", "1", note, source=PROFILER_SOURCE, status=status).to_row(
        phase=phase, module="")]
