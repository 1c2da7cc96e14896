"""Synthetic candles for the kernels: a seeded random walk with consistent OHLC, or explicit prices."""

from __future__ import annotations

import numpy as np

from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays

START = 1_704_067_200  # 2024-01-01T00:00:00Z


def random_walk(size: int, seed: int = 7, step_seconds: int = 3600) -> CandleArrays:
    rng = np.random.default_rng(seed)
    close = 50_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, size)))
    open_ = np.empty(size)
    open_[0] = 50_000.0
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, 0.0005, size - 1))
    high = np.maximum(open_, close) * np.exp(rng.exponential(0.002, size))
    low = np.minimum(open_, close) * np.exp(-rng.exponential(0.002, size))
    volume = rng.lognormal(3.0, 0.5, size)
    vwap = (high + low + close) / 3.0
    return CandleArrays(
        open_time=START + step_seconds * np.arange(size, dtype=np.int64),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        quote_volume=volume * vwap,
        taker_buy_volume=volume * rng.uniform(0.2, 0.8, size),
    )


def from_prices(
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    volume: F64 | None = None,
    step_seconds: int = 3600,
) -> CandleArrays:
    """Candles from explicit prices; volume 1 each unless given, quote volume at the close."""
    size = close.size
    base = np.ones(size) if volume is None else volume
    return CandleArrays(
        open_time=START + step_seconds * np.arange(size, dtype=np.int64),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=base,
        quote_volume=base * close,
        taker_buy_volume=base / 2.0,
    )
