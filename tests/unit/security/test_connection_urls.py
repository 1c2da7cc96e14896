"""Connection URLs carry passwords: a malformed one is reported by the part that is wrong, never by its text.

The hostile passwords interleave URL-special ASCII with non-ASCII characters, so every 4-character window of
one holds a character no (ASCII) message template has: a window found in a message was copied from the URL.
"""

from __future__ import annotations

import argparse
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamanager_workers.consumer.settings import SettingsError, add_arguments, load
from datamanager_workers.shared.errors import InvalidConfigError
from datamanager_workers.shared.sink import ResultSink, parse_mongodb_uri
from datamanager_workers.shared.source import MySqlDsn
from datamanager_workers.shared.urls import nats_login, shown, split_url

URL_SPECIAL = "/?#@:%[]&=+$,;!*'()\"\\ `~^|{}<>"
NON_ASCII = st.characters(min_codepoint=0xA1, exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc", "Cf"))
HOSTILE = st.lists(
    st.tuples(st.sampled_from(URL_SPECIAL) | st.characters(min_codepoint=33, max_codepoint=126), NON_ASCII),
    min_size=2,
    max_size=12,
).map(lambda pairs: "".join(a + b for a, b in pairs))


def windows(secret: str, size: int = 4) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)} or {secret}


def assert_no_part_of(secret: str, message: str) -> None:
    leaked = sorted(w for w in windows(secret) if w in message)
    assert not leaked, f"the message repeats {leaked!r}: {message}"


# ---------------------------------------------------------------- the example, and its cousins


@pytest.mark.parametrize(
    ("dsn", "names"),
    [
        ("mysql://dm:s3cr/etPW99@db:3306/x", "unencoded '/', '?' or '#'"),
        ("mysql://dm:s3cr?etPW99@db:3306/x", "unencoded '/', '?' or '#'"),
        ("mysql://dm:s3cr#etPW99@db:3306/x", "unencoded '/', '?' or '#'"),
        ("mysql://dm:s3cretPW99@db:33o6/x", "the port of the MySQL DSN is not a number"),
        ("mysql://dm:s3cretPW99@db:99999/x", "the port of the MySQL DSN is not a number"),
        ("mysql://dm:s3cretPW99@db:/x", "empty port"),
        ("mysql://dm:s3cretPW99@/x", "names no host"),
        ("mysql://dm:s3cretPW99@d%b/x", "the host of the MySQL DSN is not a host name"),
        ("mysql://dm:s3cretPW99@db:3306/", "needs a host and a database"),
        ("mysql://dm:s3cretPW99@db:3306/x/y", "must be one database name"),
        ("mysql://dm:s3cretPW99@a,b/x", "names several hosts"),
        ("postgres://dm:s3cretPW99@db/x", "must start with mysql://"),
        ("dm:s3cretPW99@db/x", "must start with mysql://"),
        ("s3cretPW99", "must start with mysql://"),
        ("mysql://dm:s3cretPW99@db/x\n", "trailing whitespace"),
        ("mysql://dm:s3cret PW99@db/x", "whitespace or a control character"),
    ],
)
def test_a_malformed_dsn_names_the_wrong_part_never_the_password(dsn: str, names: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        MySqlDsn.parse(dsn)
    message = str(caught.value)
    assert names in message
    for fragment in ("s3cr", "etPW", "PW99"):
        assert fragment not in message, message


def test_a_wrong_scheme_is_shown_when_it_is_only_a_scheme() -> None:
    with pytest.raises(InvalidConfigError, match=r"not postgres://"):
        MySqlDsn.parse("postgres://u:pw@db/x")


def test_an_unencoded_slash_says_how_to_encode_it() -> None:
    with pytest.raises(InvalidConfigError) as caught:
        MySqlDsn.parse("mysql://dm:s3cr/etPW99@db:3306/x")
    assert "/ as %2F" in str(caught.value)
    assert "urllib.parse.quote" in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(password=HOSTILE)
def test_any_password_encoded_round_trips_exactly(password: str) -> None:
    dsn = MySqlDsn.parse(f"mysql://dm:{quote(password, safe='')}@db.example:3307/candles")
    assert (dsn.user, dsn.password, dsn.host, dsn.port, dsn.database) == (
        "dm",
        password,
        "db.example",
        3307,
        "candles",
    )
    assert_no_part_of(password, f"{dsn} {dsn!r} {dsn.where}")


@settings(max_examples=500, deadline=None)
@given(password=HOSTILE, user=st.sampled_from(["dm", ""]), tail=st.sampled_from(["", ":3306", ":x"]))
def test_any_password_left_unencoded_parses_or_fails_without_a_trace_of_it(
    password: str, user: str, tail: str
) -> None:
    """Unencoded, a hostile password either still reads unambiguously or fails; neither path repeats it."""
    for text in (
        f"mysql://{user}:{password}@db{tail}/candles",
        f"mongodb://{user}:{password}@db{tail}/",
        f"nats://{user}:{password}@db{tail}",
    ):
        scheme = text.partition("://")[0]
        try:
            url = split_url(text, "the URL", (scheme,), "x", several_hosts=True)
        except InvalidConfigError as exc:
            assert_no_part_of(password, str(exc))
        else:
            assert_no_part_of(password, f"{url!r} {url.where} {url.without_credentials()}")


# ---------------------------------------------------------------- MongoDB


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("mongodb://u:s3cr/etPW99@db:27017/", "unencoded '/', '?' or '#'"),
        ("mongodb://u:s3cretPW99@db:27x17/", "the port of the MongoDB URI is not a number"),
        ("mongodb://u:s3cretPW99@a:1,b:2x/", "the port of the MongoDB URI is not a number"),
        ("mysql://u:s3cretPW99@db/", "must start with mongodb:// or mongodb+srv://"),
    ],
)
def test_a_malformed_mongodb_uri_names_the_wrong_part_never_the_password(uri: str, names: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        parse_mongodb_uri(uri)
    assert names in str(caught.value)
    for fragment in ("s3cr", "etPW", "PW99"):
        assert fragment not in str(caught.value)


def test_the_driver_refusing_an_option_is_reported_without_the_driver_s_words() -> None:
    """PyMongo's own messages can quote what they could not read; only the failure's kind is passed on."""
    with pytest.raises(InvalidConfigError) as caught:
        ResultSink("mongodb://u:s3cretPW99@db:27017/?authSource=&appName=PW99x", "d")
    message = str(caught.value)
    assert "refused by the driver" in message
    assert "db:27017" in message
    for fragment in ("s3cr", "PW99", "authSource"):
        assert fragment not in message


def test_a_sink_shows_its_hosts_only() -> None:
    sink = ResultSink(f"mongodb://u:{quote('s3cr/et@PW99', safe='')}@a:1,b:2/admin?authMechanism=PLAIN", "d")
    assert sink.where == "a:1,b:2"


# ---------------------------------------------------------------- NATS (the consumer)


def consumer_flags(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(flags))


@pytest.mark.parametrize(
    "url",
    [
        "nats://u:s3cr/etPW99@nats:4222",
        "nats://u:s3cretPW99@nats:4x22",
        "http://u:s3cretPW99@nats:4222",
        "nats://u:s3cretPW99@nats:4222,nats://v:other@nats2:4222",
    ],
)
def test_a_bad_nats_url_is_reported_by_its_setting_never_its_value(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(consumer_flags("--nats-url", url), {})
    (problem,) = caught.value.problems
    assert problem.startswith("--nats-url: ")
    for fragment in ("s3cr", "etPW", "PW99", "other"):
        assert fragment not in problem, problem


def test_nats_credentials_are_decoded_and_passed_apart_from_the_urls() -> None:
    password = "p@ss/wörd?#€"
    login = nats_login([f"nats://us%C3%ABr:{quote(password, safe='')}@a:4222", "tls://b:4443"])
    assert login.servers == ["nats://a:4222", "tls://b:4443"]
    assert (login.user, login.password, login.token) == ("usër", password, None)
    token = nats_login(["nats://s%2Fcret-token@a:4222"])
    assert (token.user, token.password, token.token) == (None, None, "s/cret-token")
    assert nats_login(["nats://a:4222"]) == (["nats://a:4222"], None, None, None)


def test_a_url_in_a_log_line_shows_where_never_who() -> None:
    assert shown(f"nats://dm:{quote('s3cr/et', safe='')}@a:4222,b:4223") == "nats://a:4222,b:4223"
    assert shown("nats://dm:s3cr/etPW99@a:4222") == "(a malformed URL)"
    assert shown("mongodb://u:pw@h/db?tlsCertificateKeyFilePassword=PW99") == "mongodb://h/db"
