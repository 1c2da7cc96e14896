"""Benchmark of datamanager.cron.slots, which every reconcile of a scheduled resource calls.

    python bench/cron.py [--calls 3000]

Steady state (the latest slot already handled, the next one ahead), for a few schedules and zones:
  cached    slots() as the operator calls it: each expression parsed once (its canonical lists and
            croniter's expansion are kept, 1024 expressions at most)
  uncached  the named baseline: the same slots() with both caches emptied before every call, so each call
            parses the expression again, as every call did before the cache
Also timed: catching up from 3 years behind on a per-minute schedule (at most 101 slots are walked).

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from datamanager import cron
from datamanager.api import schedule

CASES = [
    ("*/15 * * * *", "UTC"),
    ("0 2 * * *", "Europe/Lisbon"),
    ("30 9 * * mon-fri", "America/New_York"),
    ("@hourly", "Australia/Lord_Howe"),
]
NOW = datetime(2026, 6, 10, 12, 7, 13, tzinfo=UTC)


def per_call(work: Callable[[], object], calls: int, before: Callable[[], None] | None = None) -> float:
    """Median seconds per call over 5 rounds (``before`` runs untimed before each call)."""
    rounds: list[float] = []
    for _ in range(5):
        spent = 0.0
        for _ in range(calls // 5):
            if before is not None:
                before()
            began = time.perf_counter()
            work()
            spent += time.perf_counter() - began
        rounds.append(spent / (calls // 5))
    return statistics.median(rounds)


def forget() -> None:
    cron._parsed.cache_clear()  # the baseline: nothing kept between calls
    schedule.canonical.cache_clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    calls = parser.parse_args().calls
    figures: dict[str, object] = {}
    for expression, zone in CASES:
        last = cron.latest(expression, zone, NOW)
        assert last is not None

        def steady(expression: str = expression, zone: str = zone, last: datetime = last) -> cron.Slots:
            return cron.slots(expression, zone, last, NOW)

        forget()
        fresh = steady()
        assert steady() == fresh, "the cache must not change the answer"
        uncached = per_call(steady, calls, before=forget)
        steady()
        cached = per_call(steady, calls)
        name = f"{expression} {zone}"
        figures[name] = {
            "cached_us": round(cached * 1e6, 1),
            "uncached_us": round(uncached * 1e6, 1),
            "ratio_vs_uncached": round(uncached / cached, 2),
        }
        ratio = uncached / cached
        print(f"{name:36} cached {cached * 1e6:7.1f} us  uncached {uncached * 1e6:7.1f} us  x{ratio:.2f}")
    behind = per_call(
        lambda: cron.slots("* * * * *", "UTC", NOW - timedelta(days=3 * 365), NOW), max(calls // 10, 5)
    )
    print(f"3 years behind, per-minute schedule: {behind * 1e3:.2f} ms per call (101 slots walked)")
    ratios = [f["ratio_vs_uncached"] for f in figures.values() if isinstance(f, dict)]
    figures["three_years_behind_ms"] = round(behind * 1e3, 2)
    figures["ratio_vs_uncached_min"] = min(ratios)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
