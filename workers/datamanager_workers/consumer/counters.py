"""In-memory counters of what the consumer has seen: messages by type, malformed by reason, events by symbol.

Memory is bounded whatever arrives: types and reasons are fixed sets, and symbols get their own bucket only
while there is room (the allow-list's symbols, or the first ``max_symbols`` distinct ones); every other
symbol is counted in one ``other`` bucket. First come, first kept, because a Prometheus counter must never
move from one label to another.

Counting runs for every message, so it is arranged to cost one dictionary lookup after the decode. Events are
counted in cells, one per (event type, symbol bucket); the totals by type and by symbol are sums over the
cells, taken when someone reads them. A message's cell follows from three raw fields, its stream name, its
``e`` and its ``s``, so the cell each combination resolved to is remembered: the next message on that route
skips the resolution (normalising, bucketing, the checks) entirely. The elements of all-market lists are
remembered the same way.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator
from typing import Final, NamedTuple

import msgspec

from datamanager_workers.consumer.parsing import (
    BAD_LIST_ELEMENT,
    DEFAULT_MAX_PAYLOAD_BYTES,
    EVENT_TYPES,
    MALFORMED_REASONS,
    Envelope,
    Event,
    Parsed,
    decode,
    parse,
    parse_envelope,
)
from datamanager_workers.logs import iso_utc_ms

OTHER_SYMBOLS: Final = "other"  # lower case, so no real (upper-cased) symbol can collide with it
DEFAULT_MAX_SYMBOLS: Final = 1000
# Routes are raw field combinations, so hostile input could invent them without end; past this many, new
# ones are resolved every time instead of remembered (slower, still exact).
ROUTE_LIMIT: Final = 10_000

Route = tuple[str | None, str | None, str | None]
"""The raw stream name, ``e`` and ``s`` of a single-event message: together they decide its cell."""


class Cell:
    """The events of one type counted for one symbol bucket, and the newest event time among them."""

    __slots__ = ("events", "kind", "last_event_ms")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.events = 0
        self.last_event_ms = -1  # none yet: event times are never negative, and -1 compares as older

    def add(self, event_time: int | None) -> None:
        """Count one event; ``event_time`` is its E, if it has one."""
        self.events += 1
        if event_time is not None and event_time > self.last_event_ms:
            self.last_event_ms = event_time


class SymbolStats(NamedTuple):
    """What one symbol bucket has seen, summed over its cells."""

    events: int
    last_event_ms: int | None  # the newest event time E among its events, if any carried one

    def lag_seconds(self, now: float) -> float | None:
        """How far behind ``now`` (epoch s) the newest event time is: delivery delay plus quiet time."""
        return None if self.last_event_ms is None else now - self.last_event_ms / 1000

    def as_dict(self, now: float) -> dict[str, object]:
        last, lag = self.last_event_ms, self.lag_seconds(now)
        return {
            "events": self.events,
            "last_event_time": None if last is None else iso_utc_ms(last),
            "lag_seconds": None if lag is None else round(lag, 3),
        }


class Counters:
    """Everything the consumer counts. Single-threaded by design: only the event loop touches it."""

    def __init__(
        self,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        allowed_symbols: Iterable[str] = (),
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.malformed_by_reason: dict[str, int] = dict.fromkeys(MALFORMED_REASONS, 0)
        self.bytes_total = 0
        # Symbols with a bucket of their own. An allow-list fixes them up front; otherwise new symbols get
        # one while there is room.
        self._named: set[str] = {symbol.upper() for symbol in allowed_symbols}
        self._max_symbols = 0 if self._named else max_symbols
        self._cells: dict[tuple[str, str], Cell] = {}
        self._routes: dict[Route, Cell] = {}
        # A list payload is one message of several events, all counted in its type's cells: the events
        # beyond the first are recorded here, so that messages by type can subtract them.
        self._extra_list_events: dict[str, int] = dict.fromkeys(EVENT_TYPES, 0)

    def observe(self, payload: bytes) -> str | None:
        """Count one message; return why it is malformed, or ``bad_list_element`` when it is a list counted
        without some of its elements, if so."""
        malformed = self.observe_all((payload,))
        return malformed[0][0] if malformed else None

    def observe_all(self, payloads: Collection[bytes]) -> list[tuple[str, bytes]]:
        """Count messages; return the malformed ones, and the lists counted without some of their elements,
        each with why.

        Counting a batch in one loop keeps this code and the decoder's hot in the CPU's caches, which
        counting each message between the NATS client's own steps does not: about 1 us of CPU per message
        (8.3 against 9.3 us in situ, on the benchmark's mix).
        """
        self.bytes_total += sum(map(len, payloads))
        max_bytes, routes = self.max_payload_bytes, self._routes
        malformed = []
        for payload in payloads:
            envelope = route = None
            if len(payload) <= max_bytes and payload.isascii():
                try:
                    envelope = decode(payload)
                except (msgspec.MsgspecError, RecursionError):
                    pass  # malformed: parse() says why
                else:
                    data = envelope.data
                    if isinstance(data, Event):
                        # A single event whose symbol is in `s`, or nowhere but the stream name, and that
                        # names no contract type: these three fields decide everything parse_envelope()
                        # would conclude about it.
                        if (
                            data.symbol is not None or data.kline is data.order is data.pair is None
                        ) and data.contract_type is None:
                            route = (envelope.stream, data.event_type, data.symbol)
                            cell = routes.get(route)
                            if cell is not None:
                                # Cell.add, spelled out: a call per message costs more than the rest.
                                cell.events += 1
                                event_time = data.event_time
                                if event_time is not None and event_time > cell.last_event_ms:
                                    cell.last_event_ms = event_time
                                continue
                    elif data and self._count_list_quickly(envelope.stream, data):
                        continue
            reason = self._count_slowly(payload, envelope, route)
            if reason is not None:
                malformed.append((reason, payload))
        return malformed

    def _count_list_quickly(self, stream: str | None, elements: list[Event]) -> bool:
        """Count an all-market list from its elements' remembered routes. Counts nothing and returns False
        unless every element's route is known and resolves to the first one's type, the list's type."""
        routes = self._routes
        cells: list[Cell] = []
        for element in elements:
            cell = routes.get((stream, element.event_type, element.symbol))
            # Without `s`, an element's symbol may be nested (k.s, o.s, ps): the route does not decide it.
            if (
                cell is None
                or element.symbol is None
                or element.contract_type is not None
                or (cells and cell.kind is not cells[0].kind)
            ):
                return False
            cells.append(cell)
        for cell, element in zip(cells, elements, strict=True):
            cell.add(element.event_time)
        self._extra_list_events[cells[0].kind] += len(cells) - 1
        return True

    def _count_slowly(self, payload: bytes, envelope: Envelope | None, route: Route | None) -> str | None:
        """Count a message from what parse() makes of it; remember the route's cell for the next one."""
        result = parse(payload, self.max_payload_bytes) if envelope is None else parse_envelope(envelope)
        reason = self._count(result)
        if not isinstance(result, str) and len(self._routes) < ROUTE_LIMIT:
            if route is not None:
                self._routes[route] = self._cell(result[0], result[1])
            elif envelope is not None and isinstance(envelope.data, list):
                self._remember_elements(envelope.stream, envelope.data)
        return reason

    def _remember_elements(self, stream: str | None, elements: list[Event]) -> None:
        """Remember the cell of each element of a list, resolved as the single event it would be alone."""
        for element in elements:
            route = (stream, element.event_type, element.symbol)
            if (
                element.symbol is None
                or element.contract_type is not None
                or route in self._routes
                or len(self._routes) >= ROUTE_LIMIT
            ):
                continue
            alone = parse_envelope(Envelope(stream, element))
            if not isinstance(alone, str):
                self._routes[route] = self._cell(alone[0], alone[1])

    def _count(self, result: Parsed | str) -> str | None:
        """Count a parsed message; return why it is malformed, or ``BAD_LIST_ELEMENT`` for a list counted
        without some of its elements."""
        if isinstance(result, str):
            self.malformed_by_reason[result] += 1
            return result
        kind, first_symbol, first_time, rest, bad_elements = result
        for symbol, event_time in ((first_symbol, first_time), *rest):
            self._cell(kind, symbol).add(event_time)
        self._extra_list_events[kind] += len(rest)
        if bad_elements:
            self.malformed_by_reason[BAD_LIST_ELEMENT] += bad_elements
            return BAD_LIST_ELEMENT
        return None

    def _cell(self, kind: str, symbol: str) -> Cell:
        if symbol not in self._named:
            if len(self._named) >= self._max_symbols:
                symbol = OTHER_SYMBOLS
            else:
                self._named.add(symbol)
        cell = self._cells.get((kind, symbol))
        if cell is None:
            cell = self._cells[kind, symbol] = Cell(kind)
        return cell

    # Reading: sums over the cells, taken when asked (a scrape, a /stats request, a summary line).

    @property
    def messages_by_type(self) -> dict[str, int]:
        totals = {kind: -extra for kind, extra in self._extra_list_events.items()}
        for (kind, _), cell in self._cells.items():
            totals[kind] += cell.events
        return totals

    @property
    def messages_total(self) -> int:
        """Every message received: each is counted exactly once, under its type or its malformed reason
        (``bad_list_element`` counts elements of lists that are counted under their type)."""
        return sum(self.messages_by_type.values()) + self.malformed_messages

    @property
    def malformed_total(self) -> int:
        """Malformed messages, and elements left out of lists (``bad_list_element``)."""
        return sum(self.malformed_by_reason.values())

    @property
    def malformed_messages(self) -> int:
        """Malformed messages: every reason but ``bad_list_element``."""
        return self.malformed_total - self.malformed_by_reason[BAD_LIST_ELEMENT]

    @property
    def events_total(self) -> int:
        """Events counted (one per message, or one per element of a list payload): each is in one bucket."""
        return sum(cell.events for cell in self._cells.values())

    @property
    def symbols(self) -> dict[str, SymbolStats]:
        """The buckets of named symbols (``other`` excluded), sorted by name."""
        return {name: stats for name, stats in self.buckets() if name != OTHER_SYMBOLS}

    @property
    def other(self) -> SymbolStats:
        return dict(self.buckets())[OTHER_SYMBOLS]

    def buckets(self) -> Iterator[tuple[str, SymbolStats]]:
        """Every symbol bucket sorted by name, the ``other`` bucket last."""
        names = [*sorted(self._named), OTHER_SYMBOLS]
        events = dict.fromkeys(names, 0)
        newest = dict.fromkeys(names, -1)
        for (_, symbol), cell in self._cells.items():
            events[symbol] += cell.events
            if cell.last_event_ms > newest[symbol]:
                newest[symbol] = cell.last_event_ms
        for name in names:
            last = newest[name]
            yield name, SymbolStats(events[name], None if last < 0 else last)

    def cells(self) -> Iterator[tuple[str, str, SymbolStats]]:
        """(event type, symbol bucket, what it counted) for every pair that counted an event."""
        for (kind, symbol), cell in self._cells.items():
            if cell.events:
                yield (
                    kind,
                    symbol,
                    SymbolStats(cell.events, None if cell.last_event_ms < 0 else cell.last_event_ms),
                )

    def worst_lag_by_type(self, now: float) -> dict[str, tuple[float, str]]:
        """Per event type whose events carry an event time: the worst lag over its symbol buckets (``now``
        minus the oldest of their newest event times) and that bucket. A stalled stream of one type shows
        here however live the symbol's other streams are; one series per type, so it stays bounded."""
        oldest: dict[str, tuple[int, str]] = {}
        for kind, symbol, stats in self.cells():
            if stats.last_event_ms is not None and (stats.last_event_ms, symbol) < oldest.get(
                kind, (2**63, "")
            ):
                oldest[kind] = (stats.last_event_ms, symbol)
        return {kind: (now - ms / 1000, symbol) for kind, (ms, symbol) in sorted(oldest.items())}

    def snapshot(self, now: float | None = None) -> dict[str, object]:
        """The counters as a JSON-ready document (the body of ``/stats``); lags are taken at ``now``."""
        now = time.time() if now is None else now
        by_type = self.messages_by_type
        malformed = self.malformed_total
        buckets = list(self.buckets())
        symbols: dict[str, dict[str, object]] = {
            name: {**stats.as_dict(now), "types": {}} for name, stats in buckets
        }
        for kind, symbol, stats in sorted(self.cells()):
            types = symbols[symbol]["types"]
            assert isinstance(types, dict)
            types[kind] = stats.as_dict(now)
        worst = self.worst_lag_by_type(now)
        return {
            "messages": {"total": sum(by_type.values()) + self.malformed_messages, "by_type": by_type},
            "malformed": {"total": malformed, "by_reason": dict(self.malformed_by_reason)},
            "events": sum(stats.events for _, stats in buckets),
            "bytes": self.bytes_total,
            "worst_lag_by_type": {
                kind: {"lag_seconds": round(lag, 3), "symbol": symbol}
                for kind, (lag, symbol) in worst.items()
            },
            "symbols": symbols,
        }
