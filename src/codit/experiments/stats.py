"""Means and 95% confidence intervals over a handful of seeds, without scipy.

An experiment repeated with S seeds gives S numbers; the interval is Student's t-interval,
``mean +- t(0.975, S-1) * sd / sqrt(S)`` with the sample standard deviation (S-1 in the
denominator). With one seed there is no spread to measure and the interval is left open
(``None``), never drawn as zero width. Paired differences (the same seed in both arms) are
just the per-seed differences put through the same interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INTERVAL = "two-sided 95% Student t-interval over seeds (mean +- t(0.975, S-1) * sd / sqrt(S))"

# Two-sided 95% quantiles t(0.975, df) for df = 1..30 (any statistics table).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the tabulated value up to 30 degrees of freedom, then the
    Cornish-Fisher expansion around the normal quantile (error below 1e-3 there)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its 95% t-interval (``low``/``high`` None with one seed)."""

    mean: float
    low: float | None
    high: float | None
    sd: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "sd": self.sd,
            "n": self.n,
        }


def mean_ci(values: list[float]) -> Interval:
    """The mean of ``values`` and its two-sided 95% Student-t confidence interval."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to average")
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, None, None, None, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n)


def paired_ci(treated: list[float], control: list[float]) -> Interval:
    """Mean and interval of the per-seed differences ``treated[i] - control[i]``."""
    if len(treated) != len(control):
        raise ValueError(f"paired samples differ in length: {len(treated)} vs {len(control)}")
    return mean_ci([a - b for a, b in zip(treated, control, strict=True)])
