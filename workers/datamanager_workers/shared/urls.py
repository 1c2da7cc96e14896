"""Connection URLs (the MySQL DSN, the MongoDB URI, NATS URLs) split without ever repeating them.

They carry passwords, so a message about a malformed one names the part that is wrong and what to do, never
its text: not the whole URL, not the piece that failed to parse (a password with an unencoded ``/`` makes
``urlsplit`` read the rest of the password as the port, and its error quotes it). The parts a caller may
show (scheme, hosts, ports, path) are checked to look like what they are before anyone shows them.

User and password are percent-decoded (RFC 3986); raw non-ASCII characters are accepted as they are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple
from urllib.parse import unquote

from datamanager_workers.shared.errors import InvalidConfigError

ENCODING_HINT = (
    "percent-encode these characters in the user and password: / as %2F, ? as %3F, # as %23, @ as %40, "
    ": as %3A, % as %25 (python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], "
    'safe=""))\' PASSWORD prints the encoded form)'
)
NATS_SCHEMES: Final = ("nats", "tls", "ws", "wss")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9._~-]+)?\]")


@dataclass(frozen=True)
class ConnectionUrl:
    """The parts of a connection URL; ``where`` (hosts and path) is safe to show, ``password`` never is."""

    scheme: str
    user: str | None
    password: str | None = field(repr=False)
    hosts: tuple[tuple[str, int | None], ...]
    path: str  # percent-decoded, without the leading "/"
    query: str = field(repr=False)  # raw: options may hold secrets too (e.g. a TLS key password)

    @property
    def where(self) -> str:
        hosts = ",".join(host if port is None else f"{host}:{port}" for host, port in self.hosts)
        return f"{hosts}/{self.path}" if self.path else hosts

    def without_credentials(self) -> str:
        """The URL as given minus user and password (query kept): for clients that take them separately."""
        hosts = ",".join(host if port is None else f"{host}:{port}" for host, port in self.hosts)
        path = f"/{self.path}" if self.path else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{hosts}{path}{query}"


def split_url(
    text: str, what: str, schemes: Sequence[str], example: str, *, several_hosts: bool = False
) -> ConnectionUrl:
    """``scheme://[user[:password]@]host[:port][,host[:port]...][/path][?query]``, checked part by part.

    ``what`` names the URL in messages ("the MySQL DSN"); ``example`` shows its expected form.
    Raises ``InvalidConfigError`` naming the wrong part; the message never contains any of ``text``."""
    if text != text.strip():
        raise InvalidConfigError(
            f"{what} has leading or trailing whitespace (often a newline stored with the Secret's value): "
            "remove it"
        )
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in text):
        raise InvalidConfigError(
            f"{what} contains whitespace or a control character: percent-encode it (a space as %20)"
        )
    head, separator, rest = text.partition("://")
    if not separator or head.lower() not in schemes:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        shown = f", not {head}://" if separator and _SCHEME.fullmatch(head) else ""
        raise InvalidConfigError(f"{what} must start with {wanted}{shown} (e.g. {example})")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, remainder = rest[:end], rest[end:]
    if "@" in remainder:
        raise InvalidConfigError(
            f"{what} has an '@' after its host part: its user or password holds an unencoded '/', '?' or "
            f"'#'; {ENCODING_HINT}"
        )
    userinfo, at, hostlist = authority.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user)
        password = unquote(raw_password) if colon else None
    hosts = tuple(_host(part, what) for part in hostlist.split(","))
    if len(hosts) > 1 and not several_hosts:
        raise InvalidConfigError(f"{what} names several hosts; it takes one (e.g. {example})")
    path, _, query = remainder.partition("?")
    path, _, _fragment = path.partition("#")
    query = query.partition("#")[0]
    return ConnectionUrl(
        scheme=head.lower(),
        user=user,
        password=password,
        hosts=hosts,
        path=unquote(path.removeprefix("/")),
        query=query,
    )


def _host(text: str, what: str) -> tuple[str, int | None]:
    if not text:
        raise InvalidConfigError(f"{what} names no host")
    if text.startswith("["):
        host, _, port_text = text.partition("]")
        host += "]"
        if port_text and not port_text.startswith(":"):
            raise InvalidConfigError(f"{what} has text after its IPv6 address that is not a port")
        port_text = port_text.removeprefix(":")
        valid = _IPV6.fullmatch(host) is not None
    else:
        host, colon, port_text = text.partition(":")
        if colon and not port_text:
            raise InvalidConfigError(f"{what} has an empty port after its host's ':'")
        valid = _HOST.fullmatch(host) is not None
    if not valid:
        raise InvalidConfigError(
            f"the host of {what} is not a host name, an IPv4 address or an [IPv6] address"
        )
    if not port_text:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidConfigError(f"the port of {what} is not a number from 1 to 65535")
    return host, int(port_text)


class NatsLogin(NamedTuple):
    """What nats.connect takes: server URLs without credentials, and the credentials decoded."""

    servers: list[str]
    user: str | None
    password: str | None
    token: str | None


def nats_login(servers: Sequence[str]) -> NatsLogin:
    """nats-py would send a URL's user and password still percent-encoded, so a password with '/' or '@'
    (which a URL must encode) would never match: they are decoded and passed on their own, for every server
    of the pool (the first URL that carries credentials gives them). Raises ``InvalidConfigError``."""
    urls = [split_url(server, "the NATS URL", NATS_SCHEMES, "nats://host:4222") for server in servers]
    user, password = next(((url.user, url.password) for url in urls if url.user is not None), (None, None))
    plain = [url.without_credentials() for url in urls]
    if user is not None and password is None:
        return NatsLogin(plain, None, None, user)  # nats://token@host
    return NatsLogin(plain, user, password, None)


def shown(text: str) -> str:
    """A URL fit for a log line: scheme, hosts and path, without credentials or options; a malformed one
    is not shown at all."""
    head = text.partition("://")[0]
    try:
        url = split_url(text, "the URL", (head.lower(),), "", several_hosts=True)
    except InvalidConfigError:
        return "(a malformed URL)"
    return f"{url.scheme}://{url.where}"
