"""Millisecond statistics and rounding as the JSON reports them (None where nothing was measured,
so the JSON stays valid)."""
from __future__ import annotations

import math

import numpy as np


def ms_summary(values: list[float]) -> dict[str, float | None]:
    """Mean, p50, p90, p99 and max of millisecond values, to 3 decimals (None without values)."""
    if not values:
        return dict.fromkeys(("mean", "p50", "p90", "p99", "max"))
    a = np.asarray(values, np.float64)
    return {"mean": round(float(a.mean()), 3), "p50": round(float(np.percentile(a, 50)), 3),
            "p90": round(float(np.percentile(a, 90)), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "max": round(float(a.max()), 3)}


def rounded(x: float | None, n: int = 1) -> float | None:
    """`x` to n decimals; None for a value that was not measured or is not finite (JSON has no NaN)."""
    return None if x is None or not math.isfinite(x) else round(x, n)
