"""The API server and the model admit the same schedules and say the same about the rest.

Generated schedule strings (tests/fixtures/cron.py: numbers in and out of range, names, reversed and equal
ranges, steps of 0 and huge ones, lists, macros, extra and missing fields, odd whitespace, impossible dates,
noise) go to the real kube-apiserver as server-side dry-run creates of a DataAudit, with the CRDs this
checkout generates. Whatever it admits, ``ScheduleSpec`` admits and ``datamanager.cron.slots`` finds a next
slot for; whatever it rejects, the model rejects, with the same message. About 300 examples (a dry run is
~10 ms; generating a string costs a few ms more), derandomized so every run checks the same strings;
SCHEDULE_ADMISSION_EXAMPLES asks for more.
"""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from lightkube import Client
from lightkube.core.exceptions import ApiError
from pydantic import ValidationError

from datamanager.api import schedule
from datamanager.api.common import ScheduleSpec
from datamanager.cron import slots
from tests.e2e.test_invalid_resources import VALID, DataAudit
from tests.fixtures.cron import MONTH_ENDS, SCHEDULES

MAX_LENGTH = 100  # the field's maxLength: the API server's and pydantic's own message, not ours
admission = settings(
    max_examples=int(os.environ.get("SCHEDULE_ADMISSION_EXAMPLES", "300")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def admitted_by_the_api_server(kube: Client, namespace: str, text: str) -> str | None:
    """None when a server-side dry run of a DataAudit with this schedule is admitted, else the message."""
    spec = copy.deepcopy(VALID) | {"schedule": text}
    body = {
        "apiVersion": "datamanager.petrosa.io/v1alpha1",
        "kind": "DataAudit",
        "metadata": {"name": "probe"},
        "spec": spec,
    }
    try:
        kube.create(DataAudit.from_dict(body), namespace=namespace, dry_run=True)
    except ApiError as exc:
        if exc.status.code != 422:  # anything but a validation error is not an answer about the schedule
            raise
        return str(exc.status.message)
    return None


def admitted_by_the_model(text: str) -> str | None:
    try:
        ScheduleSpec(schedule=text)
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    return None


def _rule(text: str) -> str:
    """Which rule rejects ``text``, for the statistics (--hypothesis-show-statistics)."""
    problem = schedule.problem(text) or ""
    for rule, words in (
        ("too long", ""),
        ("shape", "5 fields"),
        ("field", "is not *"),
        ("range", "has a range"),
    ):
        if (rule == "too long" and len(text) > MAX_LENGTH) or (words and words in problem):
            return f"rejected: {rule}"
    return "rejected: never runs"


def assert_admitted_alike(kube: Client, namespace: str, text: str) -> None:
    server = admitted_by_the_api_server(kube, namespace, text)
    model = admitted_by_the_model(text)
    event(_rule(text) if server is not None else "admitted")
    if server is None:
        assert model is None, f"the API server admits {text!r}, the model says: {model}"
        now = datetime.now(UTC)
        for zone in ("UTC", "Europe/Lisbon", "Australia/Lord_Howe"):
            assert slots(text, zone, now, now).next > now
        return
    assert model is not None, f"the model admits {text!r}, the API server says: {server}"
    if len(text) <= MAX_LENGTH:
        problem = schedule.problem(text)
        assert problem is not None
        assert problem in server, f"{text!r}: the model says {problem!r}, the API server {server!r}"
        assert server.count("spec.schedule:") == 1, f"one message only: {server}"


@pytest.mark.usefixtures("crds")
@admission
@given(SCHEDULES)
@example("5-5 * * * *")
@example("0 9 * * fri-sun")
@example("@hourly")
@example("@daily")
@example("@HOURLY")
@example("* * * * \u017fun")
@example("* * * * *\n")
@example("0 " * 60)
def test_the_api_server_and_the_model_admit_the_same_schedules(
    kube: Client, namespace: str, text: str
) -> None:
    assert_admitted_alike(kube, namespace, text)


@pytest.mark.usefixtures("crds")
@settings(admission, max_examples=max(admission.max_examples // 3, 1))
@given(MONTH_ENDS)
@example("0 0 30 2 *")
@example("0 0 31 4,6,9,11 *")
@example("0 0 30-31 2 *")
@example("0 0 31 apr-jun/2 *")
@example("0 0 30 2 mon")  # a restricted day of week: Mondays of February
@example("0 0 29 2 *")
def test_the_api_server_and_the_model_agree_on_which_dates_never_come(
    kube: Client, namespace: str, text: str
) -> None:
    assert_admitted_alike(kube, namespace, text)
