"""The extractor's MySQL candles, read with aiomysql.

The extractor stores naive UTC DATETIMEs and DECIMAL(20,8) prices. Everything leaving this module is
timezone-aware UTC, and Decimals stay Decimals: converting to float is the caller's decision, at its
computation boundary. Connection and query failures become ``SourceUnavailableError`` naming the server (never
the password).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, NamedTuple

import aiomysql

from datamanager.api.common import Interval
from datamanager_workers.shared.errors import InvalidConfigError, SourceUnavailableError
from datamanager_workers.shared.urls import split_url

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SCHEMES = ("mysql", "mysql+aiomysql", "mysql+pymysql")
_EXAMPLE = "mysql://user:password@host:3306/database"
# MySQL client error codes worth a precise message.
_ACCESS_DENIED = 1045
_UNKNOWN_DATABASE = 1049


@dataclass(frozen=True)
class MySqlDsn:
    """``mysql://user:password@host:port/database``; ``str()`` and ``where`` never show the password."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    @classmethod
    def parse(cls, dsn: str) -> MySqlDsn:
        """Raises ``InvalidConfigError`` naming the part that is wrong, never quoting the DSN."""
        url = split_url(dsn, "the MySQL DSN", _SCHEMES, _EXAMPLE)
        ((host, port),) = url.hosts
        if not url.path:
            raise InvalidConfigError(f"the MySQL DSN needs a host and a database: {_EXAMPLE}")
        if "/" in url.path:
            raise InvalidConfigError(f"the MySQL DSN's path must be one database name: {_EXAMPLE}")
        return cls(
            host=host, port=port or 3306, user=url.user or "", password=url.password or "", database=url.path
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"

    def __str__(self) -> str:
        return f"mysql://{self.user}@{self.where}"


class Candle(NamedTuple):
    """One stored candle; times aware UTC, prices and volumes exact. The extractor's columns are NOT NULL, but
    a copy or a view may hold NULLs: they stay None for the caller to judge."""

    open_time: datetime
    close_time: datetime | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal | None
    quote_volume: Decimal | None
    trades: int | None
    taker_buy_base_volume: Decimal | None
    taker_buy_quote_volume: Decimal | None


def to_utc(value: datetime) -> datetime:
    """The extractor's naive DATETIME is UTC; an aware value is converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_naive_utc(value: datetime) -> datetime:
    """For query parameters: DATETIME columns compare with naive values."""
    return to_utc(value).replace(tzinfo=None)


def table_name(prefix: str, interval: Interval) -> str:
    """``klines_`` + ``1h`` -> ``klines_h1``; validated so it can be quoted into SQL safely."""
    name = f"{prefix}{interval.table_suffix}"
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidConfigError(f"table name {name!r} is not a plain identifier")
    return name


def quote(identifier: str) -> str:
    if not _IDENTIFIER.fullmatch(identifier):
        raise InvalidConfigError(f"{identifier!r} is not a plain identifier")
    return f"`{identifier}`"


# Time functions must not depend on the server's zone: the data is UTC. Window functions materialise their
# input in temporary tables, in memory up to this limit and on disk beyond it, which is five to ten times
# slower: the server default (16 MB) spills a few hundred thousand candles, 256 MB ten symbols' year of
# one-minute candles. Memory is taken only as a query needs it.
_SESSION_SETUP = "SET time_zone = '+00:00', tmp_table_size = 1073741824, max_heap_table_size = 1073741824"

_CANDLE_SQL = """
SELECT open_time, close_time, open_price, high_price, low_price, close_price, volume, quote_asset_volume,
       number_of_trades, taker_buy_base_asset_volume, taker_buy_quote_asset_volume
FROM {table}
WHERE symbol = %s AND open_time >= %s AND open_time < %s
ORDER BY open_time
"""


class CandleSource:
    """A small aiomysql pool on one database. Use ``async with CandleSource(...) as source``."""

    def __init__(self, dsn: MySqlDsn, *, connect_timeout: float = 10.0, pool_size: int = 2) -> None:
        self.dsn = dsn
        self._connect_timeout = connect_timeout
        self._pool_size = pool_size
        self._pool: aiomysql.Pool | None = None

    async def __aenter__(self) -> CandleSource:
        try:
            async with asyncio.timeout(self._connect_timeout + 1):
                self._pool = await aiomysql.create_pool(
                    minsize=1,
                    maxsize=self._pool_size,
                    host=self.dsn.host,
                    port=self.dsn.port,
                    user=self.dsn.user,
                    # the client sends the password as latin-1; handing it the UTF-8 bytes that way sends
                    # what MySQL hashed when the password was set over a UTF-8 connection, so non-ASCII
                    # passwords work (and never raise UnicodeEncodeError quoting one of their characters)
                    password=self.dsn.password.encode().decode("latin-1"),
                    db=self.dsn.database,
                    connect_timeout=self._connect_timeout,
                    autocommit=True,
                    init_command=_SESSION_SETUP,
                )
        except TimeoutError:
            raise SourceUnavailableError(
                f"MySQL at {self.dsn.where} did not answer within {self._connect_timeout:g}s"
            ) from None
        except (aiomysql.MySQLError, OSError) as exc:
            raise self._unavailable(exc) from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    def _unavailable(self, exc: BaseException) -> SourceUnavailableError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code == _ACCESS_DENIED:
            return SourceUnavailableError(
                f"MySQL at {self.dsn.where} refused the credentials of user {self.dsn.user!r} (access denied)"
            )
        if code == _UNKNOWN_DATABASE:
            return SourceUnavailableError(
                f"MySQL at {self.dsn.host}:{self.dsn.port} has no database {self.dsn.database!r}"
            )
        detail = exc.args[1] if len(exc.args) > 1 else str(exc) or type(exc).__name__
        if exc.__cause__ is not None:  # aiomysql keeps the socket error ("Connection refused") as the cause
            detail = f"{detail} ({exc.__cause__})"
        return SourceUnavailableError(f"MySQL at {self.dsn.where} is unavailable: {detail}")

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query; connection-level failures become ``SourceUnavailableError``."""
        _, rows = await self._execute(sql, params)
        return rows

    async def explain(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The server's plan for ``sql``, one dict per table read, keyed by ``EXPLAIN``'s column names (which
        differ between MariaDB and MySQL)."""
        names, rows = await self._execute(f"EXPLAIN {sql}", params)
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def _execute(self, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names (lower case) and rows of one query."""
        if self._pool is None:
            raise RuntimeError("CandleSource is not connected: use `async with`")
        try:
            async with self._pool.acquire() as conn, conn.cursor() as cursor:
                await cursor.execute(sql, tuple(params))
                rows: list[tuple[Any, ...]] = list(await cursor.fetchall())
                names = [column[0].lower() for column in cursor.description or ()]
        except (aiomysql.OperationalError, aiomysql.InterfaceError, OSError) as exc:
            raise self._unavailable(exc) from None
        return names, rows

    async def table_rows(self, table: str) -> int | None:
        """The server's estimate of a base table's rows; None for a view or a missing table."""
        row = await self.fetch_one(
            "SELECT table_rows FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = %s AND table_type = 'BASE TABLE'",
            (table,),
        )
        return None if row is None or row[0] is None else int(row[0])

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def table_exists(self, table: str) -> bool:
        """True for a table or a view in the DSN's database."""
        row = await self.fetch_one(
            "SELECT COUNT(*) FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        )
        return bool(row and row[0])

    async def fetch_candles(self, table: str, symbol: str, start: datetime, end: datetime) -> list[Candle]:
        """Candles of one symbol with ``start <= open_time < end``, oldest first."""
        rows = await self.fetch_all(
            _CANDLE_SQL.format(table=quote(table)), (symbol, to_naive_utc(start), to_naive_utc(end))
        )
        return [
            Candle(
                open_time=to_utc(row[0]),
                close_time=None if row[1] is None else to_utc(row[1]),
                open=row[2],
                high=row[3],
                low=row[4],
                close=row[5],
                volume=row[6],
                quote_volume=row[7],
                trades=None if row[8] is None else int(row[8]),
                taker_buy_base_volume=row[9],
                taker_buy_quote_volume=row[10],
            )
            for row in rows
        ]
