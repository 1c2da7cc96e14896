"""How a run ended, from its Job and pods: every classification the operator makes."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from datamanager.contract import SUMMARY_MAX_BYTES
from datamanager_operator.outcome import finished, stuck, stuck_deadline, summary_of
from datamanager_operator.views import PodView
from tests.unit.operator.observed import T0, job_of, pod, run, summary

G1 = run()


def failed_pod(exit_code: int | None, message: str = "", name: str = "p", seconds: int = 0) -> PodView:
    return pod(
        G1.job_name,
        phase="Failed",
        name=name,
        exit_code=exit_code,
        message=message,
        created=T0 + timedelta(seconds=seconds),
    )


@pytest.mark.parametrize(
    ("message", "readable"),
    [
        (summary(), True),
        ("", False),
        ("{not json", False),
        (json.dumps({"job": "audit"}), False),  # not a summary
        (summary(message="x" * SUMMARY_MAX_BYTES), False),  # oversized: nothing past the limit is trusted
        ("\x00\xff", False),
    ],
)
def test_only_a_valid_summary_within_the_limit_is_read(message: str, readable: bool) -> None:
    found = summary_of(pod(G1.job_name, phase="Succeeded", exit_code=0, message=message))
    assert (found is not None) == readable


def test_a_summary_of_exactly_the_termination_message_limit_is_read() -> None:
    """The kubelet keeps 4096 bytes of a termination message: a summary that fills them is whole."""
    padding = SUMMARY_MAX_BYTES - len(summary(message="").encode())
    exact = summary(message="x" * padding)
    assert len(exact.encode()) == SUMMARY_MAX_BYTES
    found = summary_of(pod(G1.job_name, phase="Succeeded", exit_code=0, message=exact))
    assert found is not None
    assert found.message == "x" * padding
    over = summary(message="x" * (padding + 1))
    assert summary_of(pod(G1.job_name, phase="Succeeded", exit_code=0, message=over)) is None


def test_a_completed_job_succeeds_with_one_summary_per_index_the_newest_pod_winning() -> None:
    job = job_of(G1, finished=True, succeeded=True)
    pods = [
        pod(
            job.name,
            phase="Succeeded",
            name="i1-old",
            index=1,
            exit_code=0,
            message=summary(10.0),
            created=T0,
        ),
        pod(
            job.name,
            phase="Succeeded",
            name="i1-new",
            index=1,
            exit_code=0,
            message=summary(20.0),
            created=T0 + timedelta(1),
        ),
        pod(job.name, phase="Succeeded", name="i0", index=0, exit_code=0, message=summary(30.0)),
        pod(job.name, phase="Failed", name="i0-retry", index=0, exit_code=1, message=summary(99.0)),
        pod(job.name, phase="Succeeded", name="i2", index=2, exit_code=0, message="garbage"),
    ]
    outcome = finished(job, pods)
    assert (outcome.succeeded, outcome.reason, outcome.outcome) == (True, "RunSucceeded", "Succeeded")
    assert outcome.message == "the run completed"
    assert outcome.completion_time == "2026-11-28T12:05:00Z"
    assert [s.health_score for s in outcome.summaries] == [30.0, 20.0]


def test_a_deadline_ends_the_run_with_the_jobs_own_words() -> None:
    job = job_of(
        G1, finished=True, reason="DeadlineExceeded", message="Job was active longer than specified deadline"
    )
    outcome = finished(job, [failed_pod(137)])
    assert (outcome.succeeded, outcome.reason) == (False, "DeadlineExceeded")
    assert outcome.message == "Job was active longer than specified deadline"
    assert outcome.completion_time == job.completion_time == "2026-11-28T12:05:00Z"


def test_a_failed_job_without_failed_pods_keeps_the_jobs_reason() -> None:
    job = job_of(G1, finished=True, reason="PodFailurePolicy", message="rule 0")
    outcome = finished(job, [])
    assert (outcome.succeeded, outcome.outcome) == (False, "Failed")
    assert (outcome.reason, outcome.message) == ("PodFailurePolicy", "rule 0")
    assert outcome.completion_time == "2026-11-28T12:05:00Z", "when the Job ended, not when it was seen"
    without_reason = finished(dataclasses.replace(job, reason=""), [])
    assert (without_reason.succeeded, without_reason.reason) == (False, "JobFailed")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (1, "WorkerError"),
        (2, "InvalidConfig"),
        (3, "SourceUnavailable"),
        (4, "SinkUnavailable"),
        (137, "WorkerError"),
        (None, "WorkerError"),
    ],
)
def test_a_worker_that_left_no_summary_is_reported_by_its_exit_code_never_its_output(
    code: int | None, reason: str
) -> None:
    job = job_of(G1, finished=True, reason="PodFailurePolicy")
    outcome = finished(job, [failed_pod(code, message="password=hunter2 Traceback ...")])
    assert (outcome.succeeded, outcome.reason) == (False, reason)
    assert outcome.completion_time == "2026-11-28T12:05:00Z"
    assert outcome.message == f"the worker exited with code {code} and left no summary"
    assert "hunter2" not in outcome.message


def test_retries_exhausted_name_the_attempts_and_the_last_reason() -> None:
    failure = summary(None, outcome="Failed", exitCode=4, reason="SinkUnavailable", message="MongoDB refused")
    job = job_of(G1, finished=True, reason="BackoffLimitExceeded")
    pods = [failed_pod(1, "", "a", 0), failed_pod(4, failure, "c", 20), failed_pod(3, "", "b", 10)]
    outcome = finished(job, pods)
    assert outcome.reason == "SinkUnavailable"
    assert outcome.message == "retries exhausted after 3 attempt(s); last: MongoDB refused"


def test_a_long_worker_message_is_cut() -> None:
    failure = summary(None, outcome="Failed", exitCode=3, reason="SourceUnavailable", message="m" * 3000)
    outcome = finished(job_of(G1, finished=True, reason="PodFailurePolicy"), [failed_pod(3, failure)])
    assert len(outcome.message) == 1000


@pytest.mark.parametrize(
    ("waiting", "unschedulable", "age", "expected"),
    [
        ("ErrImagePull", None, 30, ("ErrImagePull", "a worker pod could not start: ErrImagePull message")),
        (
            "InvalidImageName",
            None,
            30,
            ("InvalidImageName", "a worker pod could not start: InvalidImageName message"),
        ),
        ("CreateContainerError", None, 29, None),
        ("CrashLoopBackOff", None, 999, None),
        ("", "0/3 nodes", 60, ("Unschedulable", "a worker pod could not be scheduled: 0/3 nodes")),
        ("", "0/3 nodes", 59, None),
        ("", None, 999, None),
    ],
)
def test_stuck_pods(
    waiting: str, unschedulable: str | None, age: int, expected: tuple[str, str] | None
) -> None:
    pods = [pod(G1.job_name, phase="Pending", waiting=waiting, unschedulable=unschedulable)]
    assert stuck(pods, T0 + timedelta(seconds=age), 30, 60) == expected


def test_the_next_look_is_when_the_first_waiting_pod_would_count_as_stuck() -> None:
    pods = [
        pod(G1.job_name, name="a", waiting="ImagePullBackOff", created=T0),
        pod(G1.job_name, name="b", unschedulable="no nodes", created=T0 - timedelta(seconds=50)),
        pod(G1.job_name, name="c", waiting="ContainerCreating", created=T0 - timedelta(days=1)),
    ]
    assert stuck_deadline(pods, 30, 60) == T0 + timedelta(seconds=10)
    assert stuck_deadline(pods[2:], 30, 60) is None
    assert stuck_deadline([], 30, 60) is None
