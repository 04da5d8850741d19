"""Each meter's resolution (stated by the meter, `harness.measure`), and the values below it.

A value below its meter's resolution says "small", not how small: it is kept out of the fits,
ratios, crossovers, figures and the verdict (`analysis.ok_values` leaves it out) and listed in
the report instead.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.measure import energy, memory, timing

RESOLUTIONS: dict[tuple[str, str], tuple[float, str]] = {
    **timing.RESOLUTIONS, **memory.RESOLUTIONS, **energy.RESOLUTIONS,
}


def of(df: pd.DataFrame) -> pd.Series:
    """Each row's meter resolution in the row's unit; nan where its meter states none."""
    keys = zip(df["source"].astype(str), df["metric"].astype(str)) if len(df) else []
    return pd.Series([RESOLUTIONS.get(key, (np.nan, ""))[0] for key in keys], index=df.index, dtype=float)


def below(df: pd.DataFrame) -> pd.Series:
    """Mask of measured rows (finite value) whose value is below their meter's resolution."""
    values = pd.to_numeric(df["value"], errors="coerce")
    return (values < of(df)).fillna(False).astype(bool)


def meters(df: pd.DataFrame) -> pd.DataFrame:
    """The meters behind the run's rows that state a resolution: source, metric, unit, resolution,
    why, values (measured rows) and below (how many of them are below the resolution)."""
    columns = ["source", "metric", "unit", "resolution", "why", "values", "below"]
    measured = df[np.isfinite(pd.to_numeric(df["value"], errors="coerce"))]
    rows = []
    for (source, metric), group in measured.groupby(["source", "metric"], sort=True):
        if (source, metric) not in RESOLUTIONS:
            continue
        value, why = RESOLUTIONS[(source, metric)]
        rows.append({"source": source, "metric": metric, "unit": group["unit"].iloc[0], "resolution": value,
                     "why": why, "values": len(group), "below": int((group["value"] < value).sum())})
    return pd.DataFrame(rows, columns=columns)
