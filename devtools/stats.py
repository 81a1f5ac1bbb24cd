"""The arithmetic of a load run: percentiles, latency summaries, rates, CPU per message."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and mean, in milliseconds."""
    ms = [v * 1000 for v in values]

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "n": len(ms),
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "mean_ms": r(sum(ms) / len(ms)) if ms else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def per_second(times: Sequence[float], start: float, seconds: float) -> float:
    """Events per second inside [start, start + seconds]."""
    return round(sum(1 for t in times if start <= t <= start + seconds) / seconds, 2)


def sustained(times: Sequence[float], start: float, seconds: float) -> float:
    """Events per second once the closed loop has filled: the first quarter is left out."""
    ramp = seconds / 4
    return per_second(times, start + ramp, seconds - ramp)


def timeline(times: Sequence[float], start: float, seconds: float, step: float = 5) -> list[float]:
    """Events per second in consecutive windows of `step` seconds."""
    buckets = Counter(int((t - start) // step) for t in times if start <= t <= start + seconds)
    return [round(buckets.get(i, 0) / step, 2) for i in range(int(seconds // step))]


def cpu_per_message(
    before: dict[str, float], after: dict[str, float], messages: int
) -> dict[str, float]:
    """Milliseconds of CPU per message of each process between two snapshots."""
    return {
        name: round(1000 * (after[name] - before.get(name, 0.0)) / max(messages, 1), 1)
        for name in after
    }
