"""Candles as float64 columns: the one place where the source's exact Decimals become floats, and where bad
candles are set aside.

A candle is bad when a price is missing (NULL), not finite or not positive, a volume is missing, not finite
or negative, or its low is above its open or close or its high below them. Bad candles are excluded before
any family sees the series, so a bad candle counts as a missing one: it affects only the windows that
contain it, and the results say how many were excluded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from datamanager_workers.analytics.arrays import F64, I64
from datamanager_workers.shared.source import Candle


@dataclass(frozen=True)
class CandleArrays:
    """One symbol's candles, oldest first; ``open_time`` in whole seconds since the epoch (UTC)."""

    open_time: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    quote_volume: F64
    taker_buy_volume: F64

    @property
    def size(self) -> int:
        return int(self.close.size)

    def bad(self) -> npt.NDArray[np.bool_]:
        """Which candles are bad (see the module's docstring)."""
        with np.errstate(invalid="ignore"):
            prices_ok = (self.open > 0) & (self.high > 0) & (self.low > 0) & (self.close > 0)
            prices_ok &= np.isfinite(self.open + self.high + self.low + self.close)
            volumes = (self.volume, self.quote_volume, self.taker_buy_volume)
            volumes_ok = np.logical_and.reduce([(v >= 0) & np.isfinite(v) for v in volumes])
            body_ok = (self.low <= np.minimum(self.open, self.close)) & (
                self.high >= np.maximum(self.open, self.close)
            )
        bad: npt.NDArray[np.bool_] = ~(prices_ok & volumes_ok & body_ok)
        return bad

    def without_bad(self) -> tuple[CandleArrays, int]:
        """The good candles, in order, and how many bad ones were left out."""
        bad = self.bad()
        excluded = int(np.count_nonzero(bad))
        if not excluded:
            return self, 0
        good = ~bad
        return CandleArrays(*(getattr(self, f.name)[good] for f in fields(self))), excluded

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> CandleArrays:
        def column(values: Sequence[object]) -> F64:
            # Decimal -> float here and nowhere else; a NULL (None) becomes NaN, a bad candle's mark
            return np.array(values, dtype=np.float64)

        if not candles:
            empty = np.empty(0)
            return cls(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty, empty, empty)
        times = np.array([int(c.open_time.timestamp()) for c in candles], dtype=np.int64)
        return cls(
            open_time=times,
            open=column([c.open for c in candles]),
            high=column([c.high for c in candles]),
            low=column([c.low for c in candles]),
            close=column([c.close for c in candles]),
            volume=column([c.volume for c in candles]),
            quote_volume=column([c.quote_volume for c in candles]),
            taker_buy_volume=column([c.taker_buy_base_volume for c in candles]),
        )
