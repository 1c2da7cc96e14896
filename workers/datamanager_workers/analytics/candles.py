"""Candles as float64 columns: the one place where the source's exact Decimals become floats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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

    @classmethod
    def from_candles(cls, candles: Sequence[Candle]) -> CandleArrays:
        def column(values: Sequence[object]) -> F64:
            return np.array(values, dtype=np.float64)  # Decimal -> float here and nowhere else

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
