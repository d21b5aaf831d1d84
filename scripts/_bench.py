"""What every benchmark script shares: percentiles and one summary row per case."""

from __future__ import annotations

import statistics
from typing import Any


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stats(name: str, samples: list[float], **extra: Any) -> dict[str, Any]:
    """One row: n, ops/s over the summed time, and p50/p95/p99/max in milliseconds."""
    total = sum(samples)
    return {
        "name": name,
        "n": len(samples),
        "ops_per_s": len(samples) / total if total else 0.0,
        "p50_ms": statistics.median(samples) * 1000 if samples else 0.0,
        "p95_ms": pct(samples, 0.95) * 1000,
        "p99_ms": pct(samples, 0.99) * 1000,
        "max_ms": max(samples, default=0.0) * 1000,
        **extra,
    }
