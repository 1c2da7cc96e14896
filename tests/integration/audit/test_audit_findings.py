"""The SQL audit on real MariaDB: it finds exactly the injected defects and agrees with the plain
reference implementation on every dataset."""

from __future__ import annotations

from datetime import timedelta

import pytest

from datamanager.api import AuditCheck, DataAuditSpec, Interval
from datamanager_workers.audit import queries
from datamanager_workers.audit.checks import audit_table, index_hint, min_spike_returns
from datamanager_workers.audit.findings import AuditWindow, DatasetAudit, DatasetStatus
from datamanager_workers.audit.scoring import score_dataset
from datamanager_workers.shared.source import CandleSource, MySqlDsn, to_naive_utc
from tests.fixtures.mysql import connect
from tests.fixtures.reference_audit import fetch_rows, findings_of, reference_audit
from tests.integration.audit.audit_seed import (
    AS_OF,
    BTC_DEFECTS,
    COUNT,
    DUPLICATED,
    FIRST,
    STEP,
    VIEW_DUPLICATED,
    at,
    seed,
)

SPEC = DataAuditSpec.model_validate(
    {
        "source": {"dsnSecretRef": {"name": "s", "key": "k"}},
        "sink": {"uriSecretRef": {"name": "s", "key": "k"}},
        "symbols": ["BTCUSDT"],
        "intervals": ["1h"],
        "window": f"{COUNT * 60 + 1}m",
    }
)
WINDOW = AuditWindow.ending_at(AS_OF, SPEC.window_delta, Interval.H1)


@pytest.fixture
def seeded(mysql_dsn: str) -> str:
    seed(mysql_dsn)
    return mysql_dsn


async def _audit(dsn: str, symbol: str, prefix: str = "klines_", spec: DataAuditSpec = SPEC) -> DatasetAudit:
    spec = spec.model_copy(update={"source": spec.source.model_copy(update={"table_prefix": prefix})})
    """One symbol's findings from an audit of all the seeded symbols at once, so that every test also
    proves the per-symbol partitioning of the queries."""
    symbols = ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
    async with CandleSource(MySqlDsn.parse(dsn)) as source:
        audits = await audit_table(source, spec, Interval.H1, symbols, WINDOW)
    return audits[symbols.index(symbol)]


def test_the_window_is_exactly_the_generated_series() -> None:
    assert WINDOW.first_expected == FIRST
    assert WINDOW.last_expected == at(COUNT - 1)
    assert WINDOW.expected == COUNT


async def test_a_clean_dataset_has_no_findings_and_scores_100(seeded: str) -> None:
    audit = await _audit(seeded, "ETHUSDT")
    assert audit.status is DatasetStatus.OK
    assert (audit.rows, audit.present) == (COUNT, COUNT)
    assert (audit.gaps, audit.violations, audit.duplicates, audit.spikes) == ([], [], [], [])
    assert audit.freshness is not None
    assert audit.freshness.stale_candles == 0
    assert score_dataset(audit, SPEC.thresholds).score == 100.0


async def test_the_audit_finds_exactly_the_injected_defects(seeded: str) -> None:
    audit = await _audit(seeded, "BTCUSDT")
    gaps = [(gap.position, gap.first_missing, gap.missing, gap.flat) for gap in audit.gaps]
    assert gaps == [
        ("leading", at(0), 3, False),
        ("interior", at(50), 1, False),
        ("interior", at(100), 5, False),
        ("interior", at(160), 1, False),  # the misaligned candle leaves its grid slot empty
        ("interior", at(200), 24, False),
        ("interior", at(232), 2, True),  # no trades on either side and the price did not move
        ("trailing", at(COUNT - 4), 4, False),
    ]
    assert audit.gap_count == 7
    injected = {at(index) for index, _ in BTC_DEFECTS.invalid}
    assert {v.open_time.replace(second=0) for v in audit.violations} == injected
    rules = {v.open_time.replace(second=0): v.rules for v in audit.violations}
    assert "misaligned_open_time" in rules[at(160)]
    assert "close_time_mismatch" in rules[at(140)]
    assert "non_positive_price" in rules[at(120)]
    assert "negative_volume" in rules[at(130)]
    assert "low_above_high" in rules[at(90)]
    assert rules[at(170)] == ("quote_volume_outside_range",)
    assert rules[at(180)] == ("taker_buy_above_total",)
    assert rules[at(190)] == ("volume_without_trades",)
    assert [spike.open_time for spike in audit.spikes] == [at(i) for i in BTC_DEFECTS.spikes]
    assert audit.freshness is not None
    assert audit.freshness.stale_candles == 4
    assert audit.freshness.last_open_time == at(COUNT - 5)
    # less the two in the gap, and one more: the candle with a volume but no trades
    assert audit.quiet_candles == len(set(BTC_DEFECTS.quiet) - {232, 233}) + 1
    assert audit.duplicates == []


@pytest.mark.parametrize(
    ("prefix", "symbol", "duplicated"),
    [
        ("klines_", "BTCUSDT", ()),
        ("klines_", "ETHUSDT", ()),
        ("dupes_", "BTCUSDT", DUPLICATED),
        ("dupview_", "BTCUSDT", VIEW_DUPLICATED),
    ],
)
async def test_the_audit_agrees_with_the_reference_implementation(
    seeded: str, prefix: str, symbol: str, duplicated: tuple[int, ...]
) -> None:
    audit = await _audit(seeded, symbol, prefix)
    conn = connect(seeded)
    try:
        with conn.cursor() as cursor:
            rows = fetch_rows(cursor, f"{prefix}h1", symbol)
    finally:
        conn.close()
    expected = reference_audit(
        rows,
        step=3600,
        first_expected=WINDOW.first_expected,
        last_expected=WINDOW.last_expected,
        end=WINDOW.end,
        sigma=SPEC.spikes.sigma,
        lookback=SPEC.spikes.lookback,
        min_returns=min_spike_returns(SPEC.spikes.lookback),
        limit=SPEC.max_findings,
    )
    assert findings_of(audit) == expected
    assert [(d.open_time, d.copies) for d in audit.duplicates] == [(at(i), 2) for i in duplicated]


async def test_findings_lists_are_bounded_but_totals_exact(seeded: str) -> None:
    spec = SPEC.model_copy(update={"max_findings": 2})
    audit = await _audit(seeded, "BTCUSDT", "dupes_", spec)
    assert len(audit.gaps) == len(audit.violations) == len(audit.duplicates) == 2
    assert audit.gap_count == 7
    assert audit.missing_candles == 3 + 1 + 5 + 1 + 24 + 2 + 4
    assert audit.invalid_rows == len(BTC_DEFECTS.invalid)
    assert (audit.duplicate_times, audit.duplicate_rows) == (3, 3)


async def test_only_the_selected_checks_run(seeded: str) -> None:
    spec = SPEC.model_copy(update={"checks": [AuditCheck.DUPLICATES]})
    audit = await _audit(seeded, "BTCUSDT", "dupes_", spec)
    assert audit.duplicate_rows == 3
    assert (audit.gap_count, audit.invalid_rows, audit.spike_count) == (0, 0, 0)
    assert audit.freshness is None
    assert set(score_dataset(audit, SPEC.thresholds).subscores) == {"uniqueness"}


async def test_a_missing_table_and_an_unknown_symbol_are_findings(seeded: str) -> None:
    missing = await _audit(seeded, "BTCUSDT", "nothing_")
    assert missing.status is DatasetStatus.MISSING_TABLE
    assert "nothing_h1 does not exist" in missing.message
    unknown = await _audit(seeded, "XRPUSDT")
    assert unknown.status is DatasetStatus.NO_DATA
    assert "unknown symbol" in unknown.message
    assert score_dataset(missing, SPEC.thresholds).score == score_dataset(unknown, SPEC.thresholds).score == 0


async def test_freshness_is_relative_to_the_interval(seeded: str) -> None:
    """Five minutes after the last 1h candle is due, the dataset is fresh, not stale as the old fixed 300 s
    rule said; one interval later it is one candle behind."""
    async with CandleSource(MySqlDsn.parse(seeded)) as source:
        on_time = AuditWindow.ending_at(AS_OF + timedelta(minutes=5), SPEC.window_delta, Interval.H1)
        [fresh] = await audit_table(source, SPEC, Interval.H1, ["ETHUSDT"], on_time)
        late = AuditWindow.ending_at(AS_OF + STEP, SPEC.window_delta, Interval.H1)
        [behind] = await audit_table(source, SPEC, Interval.H1, ["ETHUSDT"], late)
    assert fresh.freshness is not None
    assert fresh.freshness.stale_candles == 0
    assert behind.freshness is not None
    assert behind.freshness.stale_candles == 1


async def _hint(dsn: str, table: str, symbols: list[str], first: int, last: int) -> str:
    params = queries.range_params(symbols, to_naive_utc(at(first)), to_naive_utc(at(last)))
    async with CandleSource(MySqlDsn.parse(dsn)) as source:
        return await index_hint(source, table, STEP.seconds, len(symbols), params)


async def test_symbols_that_make_up_most_of_a_table_are_read_by_a_scan(seeded: str) -> None:
    # Left alone, the server groups them through the (symbol, timestamp) index: a lookup per row.
    hint = await _hint(seeded, "klines_h1", ["BTCUSDT", "ETHUSDT", "XRPUSDT"], 0, COUNT - 1)
    assert hint == "IGNORE INDEX (`idx_symbol_timestamp`)"


async def test_a_narrow_window_keeps_the_servers_plan(seeded: str) -> None:
    assert await _hint(seeded, "klines_h1", ["BTCUSDT", "ETHUSDT", "XRPUSDT"], COUNT - 6, COUNT - 1) == ""


async def test_a_view_keeps_the_servers_plan(seeded: str) -> None:
    assert await _hint(seeded, "dupview_h1", ["BTCUSDT"], 0, COUNT - 1) == ""
