"""The MongoDB result sink, through PyMongo's async client.

- Decimals are encoded by a BSON codec (``TypeRegistry``): as Decimal128 where the server has it, as their
  exact decimal string where it does not (FerretDB v1 drops the connection on Decimal128). Datetimes are BSON
  dates and read back timezone-aware UTC.
- Retention: every document carries ``expires_at``. Where the server supports TTL indexes, an index with
  ``expireAfterSeconds=0`` on that field removes documents once the date passes. Where it does not (FerretDB
  v1 answers NotImplemented), ``ensure_indexes`` reports ``RetentionMode.SWEEP`` and the job calls
  ``sweep_expired`` at the end of each run, so results live at most one run past their retention.
- ``replace_run`` upserts documents by their deterministic ``_id`` and deletes what an earlier attempt of the
  same run (and scope, e.g. shard) left that this one did not write: a rerun replaces, never duplicates.
- Every server failure becomes ``SinkUnavailableError`` naming the server, never the credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Any

from bson.codec_options import CodecOptions, TypeEncoder, TypeRegistry
from bson.decimal128 import Decimal128
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from datamanager_workers.shared.errors import InvalidConfigError, SinkUnavailableError
from datamanager_workers.shared.urls import ConnectionUrl, split_url

EXPIRES_FIELD = "expires_at"
TTL_INDEX = "retention_ttl"  # the server expires documents
SWEEP_INDEX = "retention"  # a plain index that keeps sweep_expired cheap
_NOT_IMPLEMENTED = 238  # the server error code FerretDB answers a TTL index with
_SCHEMES = ("mongodb", "mongodb+srv")
_EXAMPLE = "mongodb://user:password@host:27017/"

Document = Mapping[str, Any]


class RetentionMode(StrEnum):
    TTL = "ttl"  # the server deletes expired documents itself
    SWEEP = "sweep"  # no TTL indexes: each run deletes expired documents at its end


class DecimalEncoder(TypeEncoder):
    """Decimal -> Decimal128 (exact) or, on servers without Decimal128, its exact decimal string."""

    def __init__(self, *, decimal128: bool) -> None:
        self._decimal128 = decimal128

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal

    def transform_python(self, value: Any) -> Any:
        return Decimal128(value) if self._decimal128 else str(value)


def decimal_codec_options(*, decimal128: bool) -> CodecOptions[dict[str, Any]]:
    return CodecOptions(
        type_registry=TypeRegistry([DecimalEncoder(decimal128=decimal128)]), tz_aware=True, tzinfo=UTC
    )


def expiry(now: datetime, retention_days: int) -> datetime:
    """The ``expires_at`` value for a document written ``now``."""
    return now + timedelta(days=retention_days)


def parse_mongodb_uri(uri: str) -> ConnectionUrl:
    """The URI's parts, checked; ``InvalidConfigError`` names the wrong part and never quotes the URI."""
    return split_url(uri, "the MongoDB URI", _SCHEMES, _EXAMPLE, several_hosts=True)


class ResultSink:
    """One database on a MongoDB server. Use ``async with ResultSink(uri, database) as sink``."""

    def __init__(self, uri: str, database: str, *, connect_timeout: float = 10.0) -> None:
        self.where = ",".join(
            host if port is None else f"{host}:{port}" for host, port in parse_mongodb_uri(uri).hosts
        )
        self.database_name = database
        self.supports_decimal128 = True
        timeout_ms = int(connect_timeout * 1000)
        # The driver's messages about a URI can quote parts of it: only the kind of failure is passed on.
        try:
            self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                tz_aware=True,
                connect=False,
            )
        except (ConfigurationError, ValueError, TypeError) as exc:  # a mongodb+srv:// lookup happens later
            raise InvalidConfigError(
                f"the MongoDB URI for {self.where} is refused by the driver ({type(exc).__name__}): check "
                "its options (after '?') against the MongoDB connection string reference"
            ) from None
        self._db: AsyncDatabase[dict[str, Any]] | None = None

    async def __aenter__(self) -> ResultSink:
        async with self._guard("connect to"):
            info = await self._client.admin.command("buildInfo")
        self.supports_decimal128 = "ferretdbVersion" not in info
        self._db = self._client.get_database(
            self.database_name, codec_options=decimal_codec_options(decimal128=self.supports_decimal128)
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.close()

    @asynccontextmanager
    async def _guard(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except PyMongoError as exc:
            detail = str(exc).split(", full error:")[0]
            raise SinkUnavailableError(
                f"MongoDB at {self.where}: cannot {action} the server: {detail}"
            ) from None

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        if self._db is None:
            raise RuntimeError("ResultSink is not connected: use `async with`")
        return self._db

    async def ensure_indexes(self, collection: str, indexes: Sequence[IndexModel]) -> RetentionMode:
        """Create ``indexes`` and the retention TTL index; report how expired results will go."""
        coll = self.db[collection]
        async with self._guard("create indexes on"):
            existing = set(await coll.index_information())
            # One index per call, only those missing: FerretDB v1 drops the connection when a single
            # createIndexes names several indexes that already exist.
            for index in indexes:
                if index.document["name"] not in existing:
                    await coll.create_indexes([index])
            if TTL_INDEX in existing:
                return RetentionMode.TTL
            if SWEEP_INDEX in existing:
                return RetentionMode.SWEEP
            try:
                await coll.create_index([(EXPIRES_FIELD, ASCENDING)], name=TTL_INDEX, expireAfterSeconds=0)
            except OperationFailure as exc:
                if exc.code == _NOT_IMPLEMENTED or "expireAfterSeconds" in str(exc):
                    await coll.create_index([(EXPIRES_FIELD, ASCENDING)], name=SWEEP_INDEX)
                    return RetentionMode.SWEEP
                raise
        return RetentionMode.TTL

    async def replace_run(
        self, collection: str, documents: Sequence[Document], *, scope: Mapping[str, Any]
    ) -> int:
        """Write ``documents`` (each with a deterministic ``_id``) and delete documents matching ``scope``
        (e.g. ``{"run_id": ..., "shard": ...}``) that this write did not touch. Returns the count written."""
        ids = [document["_id"] for document in documents]
        async with self._guard("write results to"):
            if documents:
                try:
                    await self.db[collection].bulk_write(
                        [ReplaceOne({"_id": doc["_id"]}, dict(doc), upsert=True) for doc in documents],
                        ordered=False,
                    )
                except KeyError as exc:
                    # PyMongo reads `nModified` from every bulk reply, and FerretDB leaves it out of a reply
                    # that reports write errors: what reaches us is a KeyError, not a BulkWriteError.
                    raise SinkUnavailableError(
                        f"MongoDB at {self.where}: the server rejected the write of {len(documents)} result "
                        f"document(s) to {collection!r} (its reply lacks {exc}, as FerretDB's do on a "
                        "write error); its log says which document and why"
                    ) from None
            await self.db[collection].delete_many({**scope, "_id": {"$nin": ids}})
        return len(documents)

    async def sweep_expired(self, collection: str, now: datetime | None = None) -> int:
        """Delete documents whose ``expires_at`` has passed; the retention fallback without TTL."""
        moment = now or datetime.now(UTC)
        async with self._guard("delete expired results from"):
            result = await self.db[collection].delete_many({EXPIRES_FIELD: {"$lt": moment}})
        return result.deleted_count
