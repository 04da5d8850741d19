"""Bootstrap resampling for the report's fits and crossovers.

All functions take an explicit numpy Generator so that a report is reproducible: the same
results table always gives the same intervals.
"""
from __future__ import annotations

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95
SEED = 20241125


def generator(seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


def resampled_medians(samples: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `n_boot` resamples (with replacement) of one point's raw samples: shape (n_boot,)."""
    samples = np.asarray(samples, dtype=float)
    idx = rng.integers(0, len(samples), size=(n_boot, len(samples)))
    return np.median(samples[idx], axis=1)


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of finite bootstrap replicates; (nan, nan) when there are none."""
    finite = np.asarray(replicates, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def loglog_slopes(log_x: np.ndarray, log_y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of log_y on log_x, vectorised over leading axes.

    log_x: (n,); log_y: (..., n) -> slopes (...,).
    """
    centred_x = log_x - log_x.mean()
    centred_y = log_y - log_y.mean(axis=-1, keepdims=True)
    return (centred_y * centred_x).sum(axis=-1) / (centred_x**2).sum()
