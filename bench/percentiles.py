"""The one percentile the benchmarks report (nearest rank), shared by every script in bench/."""

from __future__ import annotations


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
