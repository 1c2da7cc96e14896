"""Turn one NATS payload into its event type and the (symbol, event time) of every event it carries.

This is the hot path: a typed msgspec decoder reads only the fields the consumer needs and skips the rest
(price levels, quantities) without building Python objects for them. Anything that is not a well-formed
envelope comes back as one reason from the bounded set in ``MALFORMED_REASONS``; no exception escapes.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

# Event times beyond this (year 3000) are nonsense and would overflow float arithmetic on lag.
_MAX_EPOCH_MS: Final = 32_503_680_000_000
EventTime = Annotated[int, msgspec.Meta(ge=0, le=_MAX_EPOCH_MS)]

MAX_SYMBOL_LENGTH: Final = 40
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024

OVERSIZED: Final = "oversized"
NOT_UTF8: Final = "not_utf8"
INVALID_JSON: Final = "invalid_json"
TOO_DEEP: Final = "too_deep"
WRONG_TYPE: Final = "wrong_type"
MISSING_DATA: Final = "missing_data"
EMPTY_LIST: Final = "empty_list"
MISSING_SYMBOL: Final = "missing_symbol"
BAD_SYMBOL: Final = "bad_symbol"
# An element of a list payload without a usable symbol, in a list with good ones: the good ones are counted,
# and each bad one here. The only reason that counts elements rather than messages.
BAD_LIST_ELEMENT: Final = "bad_list_element"
MALFORMED_REASONS: Final = (
    OVERSIZED,
    NOT_UTF8,
    INVALID_JSON,
    TOO_DEEP,
    WRONG_TYPE,
    MISSING_DATA,
    EMPTY_LIST,
    MISSING_SYMBOL,
    BAD_SYMBOL,
    BAD_LIST_ELEMENT,
)

PARTIAL_DEPTH: Final = "partialDepth"
OTHER_TYPE: Final = "other"
# Continuous klines of different contracts of one pair are different series: the contract type (`ct`, or the
# stream name's `<pair>_<contract>` prefix) is part of the type, from a fixed set so labels stay bounded.
CONTINUOUS_KLINE: Final = "continuous_kline"
_CONTINUOUS_BY_CONTRACT: Final = {
    contract: f"{CONTINUOUS_KLINE}_{contract.lower()}"
    for contract in ("PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER")
}
CONTINUOUS_OTHER: Final = f"{CONTINUOUS_KLINE}_other"  # another contract type, or none named
CONTINUOUS_TYPES: Final = (*_CONTINUOUS_BY_CONTRACT.values(), CONTINUOUS_OTHER)
# Binance's own `e` values; anything else is counted as "other" so the label set stays bounded.
_KNOWN_EVENT_TYPES: Final = (
    "trade",
    "aggTrade",
    "depthUpdate",
    "24hrTicker",
    "24hrMiniTicker",
    "markPriceUpdate",
    "kline",
    "bookTicker",
    "forceOrder",
    "compositeIndex",
    "contractInfo",
    "assetIndexUpdate",
)
EVENT_TYPES: Final = (*_KNOWN_EVENT_TYPES, *CONTINUOUS_TYPES, PARTIAL_DEPTH, OTHER_TYPE)
_TYPE_BY_EVENT_NAME: Final = {name: name for name in _KNOWN_EVENT_TYPES} | {
    CONTINUOUS_KLINE: CONTINUOUS_OTHER
}

# For payloads without `e` (spot-style partial depth, old publishers), the stream name says what it is; for
# partial depth it decides even over `e` (USD-M futures send `btcusdt@depth20@100ms` as "depthUpdate").
# Keys are lower case: stream names arrive in either case.
_TYPE_BY_STREAM_KIND: Final = {
    "trade": "trade",
    "aggtrade": "aggTrade",
    "depth": "depthUpdate",  # <symbol>@depth[@100ms]: the diff stream
    "depth5": PARTIAL_DEPTH,
    "depth10": PARTIAL_DEPTH,
    "depth20": PARTIAL_DEPTH,
    "ticker": "24hrTicker",
    "miniticker": "24hrMiniTicker",
    "markprice": "markPriceUpdate",
    "kline": "kline",
    "continuouskline": CONTINUOUS_OTHER,  # refined by the stream's contract type
    "bookticker": "bookTicker",
    "forceorder": "forceOrder",
    "contractinfo": "contractInfo",
    "assetindex": "assetIndexUpdate",
}


class Nested(msgspec.Struct, gc=False):
    """The inner object of klines (``k``) and liquidations (``o``), which carry the symbol as ``s``."""

    symbol: str | None = msgspec.field(default=None, name="s")


class Event(msgspec.Struct, gc=False):
    event_type: str | None = msgspec.field(default=None, name="e")
    event_time: EventTime | None = msgspec.field(default=None, name="E")
    symbol: str | None = msgspec.field(default=None, name="s")
    kline: Nested | None = msgspec.field(default=None, name="k")
    # `o` is a liquidation's order object, but a ticker's open price (a string).
    order: Nested | str | None = msgspec.field(default=None, name="o")
    pair: str | None = msgspec.field(default=None, name="ps")
    contract_type: str | None = msgspec.field(default=None, name="ct")


class Envelope(msgspec.Struct, gc=False):
    stream: str | None = None
    data: Event | list[Event] | None = None


decode = msgspec.json.Decoder(Envelope).decode
"""Decode a payload into an Envelope; raises msgspec errors (and RecursionError) for what is not one."""

EventRef = tuple[str, int | None]
"""One event: its normalised symbol and its event time ``E`` in epoch milliseconds, if it has one."""

Parsed = tuple[str, str, int | None, tuple[EventRef, ...], int]
"""A well-formed message: its event type, its first event's symbol and time, the events after it (the other
elements of a list payload; empty for the usual single event, so that case allocates one tuple), and how many
elements of a list were left out for a missing or bad symbol (``BAD_LIST_ELEMENT``)."""


def events(parsed: Parsed) -> tuple[EventRef, ...]:
    """Every event of a parsed message, in order."""
    _, symbol, event_time, rest, _ = parsed
    return ((symbol, event_time), *rest)


class _MalformedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The same few hundred symbols and stream names arrive over and over: remember what they resolve to. The
# bound keeps hostile input from growing them; past it, values are computed every time, just slower.
_CACHE_LIMIT: Final = 10_000
_symbols: dict[str, str] = {}  # as received -> normalised, for symbols that passed the checks
_streams: dict[str, tuple[str, str | None]] = {}  # stream name -> (type it implies, symbol it names)


def parse(payload: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Parsed | str:
    """Return the message's type and events, or the reason it is malformed (one of MALFORMED_REASONS)."""
    envelope = _checked_decode(payload, max_bytes)
    if isinstance(envelope, str):
        return envelope
    return parse_envelope(envelope)


def _checked_decode(payload: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Envelope | str:
    """The payload's envelope, or why it is not one: too large, not UTF-8, not JSON, wrong types, too deep."""
    if len(payload) > max_bytes:
        return OVERSIZED
    # JSON text must be UTF-8, and the decoder does not check fields it skips. ASCII is the common case and
    # needs no decoding to prove it.
    if not payload.isascii():
        try:
            payload.decode()
        except UnicodeDecodeError:
            return NOT_UTF8
    try:
        return decode(payload)
    except msgspec.ValidationError:
        return WRONG_TYPE
    except msgspec.DecodeError:
        return INVALID_JSON
    except RecursionError:
        return TOO_DEEP


def parse_envelope(envelope: Envelope) -> Parsed | str:
    """The type and events of a decoded envelope, or the reason it is malformed."""
    try:
        return _parse_data(envelope.data, envelope.stream)
    except _MalformedError as exc:
        return exc.reason


def _parse_data(data: Event | list[Event] | None, stream: str | None) -> Parsed | str:
    """The general case: nested or stream-named symbols, types from the stream name, new symbols, lists."""
    if isinstance(data, Event):
        symbol, event_type = _resolve(data, stream)
        return event_type, symbol, data.event_time, (), 0
    if data is None:
        return MISSING_DATA
    if not data:
        return EMPTY_LIST
    # A list is one message of its first good element's type; an element without a usable symbol is left
    # out and counted, unless no element has one: then the list is malformed for the first one's reason.
    good: list[tuple[str, str, int | None]] = []
    first_reason = None
    for element in data:
        try:
            symbol, event_type = _resolve(element, stream)
        except _MalformedError as exc:
            first_reason = first_reason or exc.reason
            continue
        good.append((symbol, event_type, element.event_time))
    if not good:
        assert first_reason is not None
        return first_reason
    (symbol, event_type, event_time), *others = good
    rest = tuple([(other[0], other[2]) for other in others])
    return event_type, symbol, event_time, rest, len(data) - len(good)


def _resolve(event: Event, stream: str | None) -> tuple[str, str]:
    """The event's normalised symbol and type: from the event where it says, else from the stream name; the
    stream name decides partial depth, and a continuous kline's contract type is part of its type."""
    symbol = event.symbol
    if symbol is None:
        symbol = _nested_symbol(event)
    name = event.event_type
    event_type = OTHER_TYPE if name is None else _TYPE_BY_EVENT_NAME.get(name, OTHER_TYPE)
    # Spot-style partial depth names neither type nor symbol: its stream name (x@depth20@100ms) names both.
    implied_type, named_symbol = _stream_info(stream)
    if name is None or implied_type == PARTIAL_DEPTH:
        event_type = implied_type
    if event_type in CONTINUOUS_TYPES:
        contract = event.contract_type
        if contract is not None:
            event_type = _CONTINUOUS_BY_CONTRACT.get(contract.upper(), CONTINUOUS_OTHER)
        elif implied_type in CONTINUOUS_TYPES:
            event_type = implied_type
    if symbol is None:
        if named_symbol is None:
            raise _MalformedError(MISSING_SYMBOL)
        symbol = named_symbol
    return _symbols.get(symbol) or _normalised(symbol), event_type


def _normalised(symbol: str) -> str:
    if 0 < len(symbol) <= MAX_SYMBOL_LENGTH and symbol.isprintable() and " " not in symbol:
        upper = symbol.upper()
        if len(_symbols) < _CACHE_LIMIT:
            _symbols[symbol] = upper
        return upper
    raise _MalformedError(BAD_SYMBOL)


def _nested_symbol(event: Event) -> str | None:
    """Klines carry the symbol in ``k.s``, liquidations in ``o.s``, continuous klines as the pair ``ps``."""
    if event.kline is not None and event.kline.symbol is not None:
        return event.kline.symbol
    if isinstance(event.order, Nested) and event.order.symbol is not None:
        return event.order.symbol
    return event.pair


def _stream_info(stream: str | None) -> tuple[str, str | None]:
    """``x@kline_1h`` -> kline, x; ``x@depth20@100ms`` -> partialDepth, x; ``!ticker@arr`` -> 24hrTicker;
    ``x_perpetual@continuousKline_1m`` -> continuous_kline_perpetual, x."""
    if stream is None:
        return OTHER_TYPE, None
    info = _streams.get(stream)
    if info is not None:
        return info
    name, at, rest = stream.partition("@")
    if name.startswith("!"):
        kind, symbol = name[1:], None
    else:
        kind, symbol = rest.partition("@")[0].partition("_")[0], (name if at and name else None)
    implied = _TYPE_BY_STREAM_KIND.get(kind.lower(), OTHER_TYPE)
    if implied == CONTINUOUS_OTHER and symbol is not None:
        pair, _, contract = symbol.partition("_")
        implied = _CONTINUOUS_BY_CONTRACT.get(contract.upper(), CONTINUOUS_OTHER)
        symbol = pair or None
    info = (implied, symbol)
    if len(_streams) < _CACHE_LIMIT:
        _streams[stream] = info
    return info
