"""The Decimal-to-float boundary: exact decimals in, float64 columns and epoch seconds out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.shared.source import Candle


def candle(hour: int, close: str) -> Candle:
    opened = datetime(2024, 7, 5, hour, tzinfo=UTC)
    price = Decimal(close)
    return Candle(
        open_time=opened,
        close_time=opened.replace(minute=59, second=59),
        open=price - Decimal("0.5"),
        high=price + Decimal("1.00000001"),
        low=price - Decimal("1"),
        close=price,
        volume=Decimal("2.5"),
        quote_volume=Decimal("2.5") * price,
        trades=10,
        taker_buy_base_volume=Decimal("1.25"),
        taker_buy_quote_volume=Decimal("1.25") * price,
    )


def test_columns_are_float64_in_time_order() -> None:
    arrays = CandleArrays.from_candles([candle(0, "57012.40000000"), candle(1, "57100.12345678")])
    assert arrays.size == 2
    assert arrays.open_time.tolist() == [1_720_137_600, 1_720_141_200]
    assert arrays.close.dtype == np.float64
    assert arrays.close.tolist() == [57012.4, 57100.12345678]
    assert arrays.high.tolist() == [57013.40000001, 57101.12345679]
    assert arrays.taker_buy_volume.tolist() == [1.25, 1.25]
    assert arrays.quote_volume[0] == float(Decimal("2.5") * Decimal("57012.4"))


def test_no_candles() -> None:
    arrays = CandleArrays.from_candles([])
    assert arrays.size == 0
    assert arrays.open_time.dtype == np.int64
