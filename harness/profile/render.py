"""A phase profile as text: the check, where the time goes by role, the module tree, the top operators."""
from __future__ import annotations

import math

import pandas as pd

from harness.profile.phase import PhaseProfile
from harness.profile.structure import ROLE_HELP
from harness.profile.tables import GROUP_PREFIX, group_frame, module_frame

TOP_OPERATORS = 15


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def _giga(value: float) -> str:
    return "-" if math.isnan(value) or value == 0 else f"{value / 1e9:.4g}"


def check_line(profile: PhaseProfile) -> str:
    """The sum-to-phase check in one line."""
    verdict = "faithful" if profile.faithful else "DISTORTED: instrumentation or load is comparable to the work"
    ref = profile.reference
    taken_out = ""
    if profile.cost is not None:
        taken_out = (f", after taking out {profile.instrumentation_ms:.4g} ms of module hooks "
                     f"({profile.cost.timing_range.total_us:.2g} us per module call)")
    timed = "timed in the module hooks" if not profile.breakdown.device else "profiled"
    return (f"measured {ref.median:.4g} ms unprofiled (median of {len(ref.samples_ms)}); {timed} "
            f"{profile.attributed_ms:.4g} ms = sum of the module rows "
            f"(mean of the {profile.breakdown.averaged} of {profile.breakdown.repeats} calls nearest the median"
            f"{taken_out}); overhead {profile.overhead:+.1%} -> {verdict} "
            f"(limit ±{profile.settings.faithful_within:.0%})" + _profiler_pass(profile))


def _profiler_pass(profile: PhaseProfile) -> str:
    """How much slower the calls in the trace ran, where the breakdown comes from another pass."""
    if math.isnan(profile.profiler_ms):
        return ""
    return (f". The profiler pass (trace, operators) ran {profile.profiler_ms:.4g} ms a call "
            f"({profile.profiler_overhead:+.0%}: an event per operator)")


def _time_label(profile: PhaseProfile) -> str:
    return "kernel ms" if profile.breakdown.device else "ms"


def role_legend(roles: list[str]) -> str:
    """One line per role shown: what its time is."""
    return "\n".join(f"- {role}: {ROLE_HELP[role]}" for role in dict.fromkeys(roles))


def group_table(profile: PhaseProfile) -> pd.DataFrame:
    groups = group_frame(module_frame(profile))
    return pd.DataFrame({
        "component": groups["component"], "role": groups["role"],
        _time_label(profile): groups["time_ms"].map(_ms), "share": groups["share"].map(_share),
        "GFLOP": groups["flops"].map(_giga), "GFLOP/s": groups["flop_rate"].map(_giga),
    })


def module_table(profile: PhaseProfile) -> pd.DataFrame:
    modules = module_frame(profile)
    table = pd.DataFrame({
        "module": ["  " * d + m for d, m in zip(modules["depth"], modules["module"])],
        "role": modules["role"], "calls": modules["calls"].map(lambda c: f"{c:g}" if c else ""),
        _time_label(profile): modules["time_ms"].map(_ms), "share": modules["share"].map(_share),
    })
    if profile.breakdown.device:
        table["host ms"] = modules["host_ms"].map(_ms)
    table["GFLOP"] = modules["flops"].map(_giga)
    table["GFLOP/s"] = modules["flop_rate"].map(_giga)
    return table


def operator_display(profile: PhaseProfile, top: int = TOP_OPERATORS) -> pd.DataFrame:
    ops = profile.operators.head(top)
    table = pd.DataFrame({
        "operator": ops["operator"], "calls": ops["calls"].map(lambda c: f"{c:g}"),
        "self host ms": ops["self_host_ms"].map(_ms), "host share": ops["self_host_share"].map(_share),
    })
    if profile.breakdown.device:
        table["self device ms"] = ops["self_device_ms"].map(_ms)
        table["device share"] = ops["self_device_share"].map(_share)
    return table


LEFT_ALIGNED = ("module", "component", "role", "operator")


def aligned(table: pd.DataFrame) -> str:
    """A table of display strings as fixed-width text: names left-aligned, numbers right-aligned."""
    columns = [str(c) for c in table.columns]
    cells = [[str(v) for v in row] for row in table.itertuples(index=False)]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if c in LEFT_ALIGNED else v.rjust(w)
                         for v, w, c in zip(values, widths, columns)).rstrip()

    return "\n".join([line(columns)] + [line(row) for row in cells])


def _block(table: pd.DataFrame) -> str:
    return f"```\n{aligned(table) if len(table) else '(none)'}\n```"


def phase_text(profile: PhaseProfile, title: str) -> str:
    """Markdown for one phase: heading, check, the three tables, and the files written."""
    files = "\n".join(f"- {name}: `{path.name}`" for name, path in profile.files.items())
    groups = group_table(profile)
    return "\n\n".join([
        f"## {profile.phase}: {title}",
        check_line(profile),
        "Where the time goes (self time summed by component and role):",
        _block(groups),
        role_legend(list(groups["role"])),
        "Modules in model order (self time, exclusive of the indented modules below each):",
        _block(module_table(profile)),
        f"Top {TOP_OPERATORS} operators by self time:",
        _block(operator_display(profile)),
        f"Files in `{profile.phase}/`:\n{files}",
    ])


TOP_GROUPS = 3


def short_summary(rows: pd.DataFrame, faithful_within: float) -> str:
    """A few lines for the terminal, one per phase: its profiled time, whether the breakdown is
    faithful, and where most of the time went; summary.md holds the rest."""
    lines = []
    for phase, frame in rows.groupby("phase", sort=False):
        check = frame[(frame["module"] == "") & (frame["metric"] == "profile_overhead")]
        if len(check) and check["status"].iloc[0] != "ok":
            lines.append(f"  {phase:<8} {check['status'].iloc[0]}: {check['error'].iloc[0]}")
            continue
        groups = frame[frame["module"].str.startswith(GROUP_PREFIX)]
        times = groups[groups["metric"] == "latency_ms"].set_index("module")["value"]
        shares = groups[groups["metric"] == "share"].set_index("module")["value"].nlargest(TOP_GROUPS)
        overhead = check["value"].iloc[0] if len(check) else math.nan
        verdict = "faithful" if abs(overhead) <= faithful_within else "DISTORTED"
        top = ", ".join(f"{name.removeprefix(GROUP_PREFIX)} {_share(share)}" for name, share in shares.items())
        lines.append(f"  {phase:<8} {_ms(times.sum())} ms, {verdict} ({overhead:+.1%}); most time: {top}")
    return "\n".join(lines)
