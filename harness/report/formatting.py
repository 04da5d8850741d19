"""How numbers, units and metric names are written in figures, tables and sentences."""
from __future__ import annotations

import math

METRIC_NAMES = {
    "latency_ms": "latency",
    "throughput": "throughput",
    "rtf": "real-time factor",
    "peak_mem_bytes": "peak memory",
    "reserved_mem_bytes": "reserved memory",
    "state_bytes": "state size",
    "state_bytes_analytic": "state size (analytic)",
    "flops": "FLOPs (counted)",
    "flops_analytic": "FLOPs (analytic)",
    "flop_coverage": "FLOP coverage",
    "energy_j": "energy",
    "energy_j_per_token": "energy per token",
    "energy_j_per_audio_s": "energy per audio second",
    "max_batch": "largest batch",
    "accuracy": "accuracy",
    "macro_f1": "macro F1",
    "mAP": "mAP",
}

_BINARY_PREFIXES = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B"))
_DECIMAL_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""))


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def display_scale(unit: str, largest: float) -> tuple[float, str]:
    """(divisor, unit label) that writes values up to `largest` with few digits.

    Bytes use binary prefixes (GiB), FLOP decimal ones (TFLOP); other units are kept.
    """
    if not math.isfinite(largest) or largest <= 0:
        largest = 1.0
    if unit == "B":
        return next((f, name) for f, name in _BINARY_PREFIXES if largest >= f or f == 1)
    if unit == "FLOP":
        factor, prefix = next((f, p) for f, p in _DECIMAL_PREFIXES if largest >= f or f == 1)
        return factor, f"{prefix}FLOP"
    if unit == "1":
        return 1.0, ""
    return 1.0, unit


def axis_label(metric: str, unit: str, largest: float, name: str | None = None) -> tuple[float, str]:
    """(divisor, axis label with unit), e.g. (2**30, "peak memory (GiB)"); `name` replaces the metric's."""
    factor, label = display_scale(unit, largest)
    name = name or metric_name(metric)
    return factor, f"{name} ({label})" if label else name


def number(value: float, digits: int = 3) -> str:
    """A value with `digits` significant digits, no exponent for everyday magnitudes; nan -> '–'."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e6:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
        return f"{value:.{decimals}f}"
    return f"{value:.{digits - 1}e}"


def quantity(value: float, unit: str) -> str:
    """A value with its unit at a readable scale: 3.2 GiB, 1.5 TFLOP, 12.3 ms."""
    if value is None or not math.isfinite(value):
        return "–"
    factor, label = display_scale(unit, abs(value))
    text = number(value / factor)
    return f"{text} {label}" if label else text


def compact(value: float, digits: int = 3) -> str:
    """Like `number` without trailing zeros: 60 -> '60', 2.50 -> '2.5'."""
    text = number(value, digits)
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def fixed(value: float, decimals: int = 2) -> str:
    """A fixed number of decimals (exponents: 1.93, -0.02); nan -> '–'."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def fixed_interval(low: float, high: float, decimals: int = 2) -> str:
    """'[1.87, 1.93]' with a fixed number of decimals, '–' when unknown."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"[{fixed(low, decimals)}, {fixed(high, decimals)}]"


def percent(share: float) -> str:
    """A share as a percentage: 0.1 -> '10 %', 0.025 -> '2.5 %'."""
    return f"{compact(100 * share)} %"


def seconds(value: float) -> str:
    """Audio length: '600 s', '2.5 s'."""
    return "–" if value is None or not math.isfinite(value) else f"{compact(value)} s"


def span(low: float, high: float) -> str:
    """A range of audio lengths: '60–300 s'."""
    return f"{compact(low)}–{seconds(high)}"


def interval(low: float, high: float, digits: int = 3) -> str:
    """'[low, high]' or '–' when the interval is unknown."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"[{number(low, digits)}, {number(high, digits)}]"
