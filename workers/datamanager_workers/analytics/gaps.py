"""Gaps: the one way every family handles missing candles (and bad ones, which are excluded as if missing).

A term that spans two candles (a log return, an overnight return, a close-to-close change, a true range, a
directional movement) is defined only between adjacent candles, exactly one interval apart: across a gap it
would cover more time than its peers (a return over 25 hours read as one hourly return inflates volatility by
sqrt((w + g) / w)). A term of one candle (its range, its body, its close, its volume) is always defined. Every
window holds the last ``w`` defined terms, and every smoother (EMA, Wilder) runs over the defined terms in
order; a candle whose own term is undefined (the first after a gap) carries the value of the last defined one.
Correlation's returns follow the same rule. So a gap or a bad candle changes only the windows that contain it
(and, through their decay, the smoothers after it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from datamanager_workers.analytics.arrays import F64, I64

Bool = npt.NDArray[np.bool_]


def adjacent(open_time: I64, step: int) -> Bool:
    """True where a candle opens exactly one interval after the candle before it (never the first)."""
    out = np.zeros(open_time.size, dtype=bool)
    out[1:] = np.diff(open_time) == step
    return out


class Defined:
    """The positions where a term is defined: ``take`` gathers the terms there in order, ``spread`` puts a
    result computed on them back at every position, each carrying the result at the last defined position at
    or before it (NaN before the first). A series without gaps is one unbroken run: then both are slices."""

    def __init__(self, mask: Bool) -> None:
        self.size = mask.size
        self.positions = np.flatnonzero(mask)
        first = int(self.positions[0]) if self.positions.size else 0
        last = int(self.positions[-1]) if self.positions.size else -1
        self._run = slice(first, last + 1) if last - first + 1 == self.positions.size else None
        self._last = last
        self._seen = None if self._run is not None else np.cumsum(mask) - 1

    def take(self, values: F64) -> F64:
        taken: F64 = values[self._run] if self._run is not None else values[self.positions]
        return taken

    def spread(self, compact: F64) -> F64:
        out = np.full(self.size, np.nan)
        if self.positions.size == 0:
            return out
        if self._run is not None:
            out[self._run] = compact
            out[self._last + 1 :] = compact[-1]
            return out
        assert self._seen is not None
        reached = self._seen >= 0
        out[reached] = compact[self._seen[reached]]
        return out


def over_defined(values: F64, defined: Bool, kernel: Callable[[F64], F64]) -> F64:
    """``kernel`` (a function of a gap-free sequence, its result aligned with its input) applied to the
    defined ``values`` only, in order, and spread back over every position (see ``Defined``)."""
    where = Defined(defined)
    return where.spread(kernel(where.take(values)))


def pairs_everywhere(size: int) -> Bool:
    """The terms of a series without gaps: every candle but the first has one."""
    out = np.ones(size, dtype=bool)
    out[:1] = False
    return out
