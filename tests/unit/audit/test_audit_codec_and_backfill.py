"""The Decimal codec (exact either way) and which gaps become backfill requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import bson
from bson.decimal128 import Decimal128

from datamanager.api import AuditCheck, Interval
from datamanager_workers.audit.backfill import backfill_requests
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit, Gap
from datamanager_workers.shared.sink import decimal_codec_options, expiry

PRICE = Decimal("57012.40000001")


def test_decimals_become_decimal128_where_the_server_has_it() -> None:
    options = decimal_codec_options(decimal128=True)
    decoded = bson.decode(bson.encode({"p": PRICE, "nested": [{"q": PRICE}]}, codec_options=options))
    assert decoded == {"p": Decimal128(PRICE), "nested": [{"q": Decimal128(PRICE)}]}
    assert decoded["p"].to_decimal() == PRICE


def test_decimals_become_their_exact_text_elsewhere() -> None:
    options = decimal_codec_options(decimal128=False)
    assert bson.decode(bson.encode({"p": PRICE}, codec_options=options)) == {"p": "57012.40000001"}


def test_datetimes_read_back_aware_utc() -> None:
    moment = datetime(2024, 7, 1, 12, tzinfo=UTC)
    options = decimal_codec_options(decimal128=False)
    decoded = bson.decode(bson.encode({"t": moment}, codec_options=options), codec_options=options)
    assert decoded["t"] == moment
    assert decoded["t"].tzinfo is not None
    assert expiry(moment, 30) == moment + timedelta(days=30)


def test_backfill_requests_cover_large_gaps_that_are_not_flat() -> None:
    start = datetime(2024, 7, 1, tzinfo=UTC)
    window = AuditWindow.ending_at(start + timedelta(days=1), timedelta(days=1), Interval.H1)
    audit = DatasetAudit(
        symbol="BTCUSDT", interval=Interval.H1, table="klines_h1", window=window, checks=frozenset(AuditCheck)
    )
    hour = timedelta(hours=1)
    audit.gaps = [
        Gap("leading", start, start + hour, 2),
        Gap("interior", start + 5 * hour, start + 9 * hour, 5),
        Gap("interior", start + 12 * hour, start + 17 * hour, 6, flat=True),
    ]
    requests = backfill_requests([audit], min_missing=3, run_id="r", resource=None)
    assert requests == [
        {
            "symbol": "BTCUSDT",
            "interval": "1h",
            "start": "2024-07-01T05:00:00Z",
            "end": "2024-07-01T09:00:00Z",
            "missing": 5,
            "run_id": "r",
            "resource": None,
        }
    ]
