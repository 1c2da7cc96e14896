"""The pure decision (planning.decide): what starts, what ends and how, what is recorded before anything
happens to a Job. Each test is one situation the reconciler can observe."""

from __future__ import annotations

from datetime import timedelta

import pytest

from datamanager.api.status import ResourceStatus
from datamanager_operator.model import job_name
from datamanager_operator.planning import history_to_delete
from tests.unit.operator.observed import (
    NAME,
    T0,
    UID,
    audit_spec,
    conditions,
    decided,
    job_of,
    observed,
    pod,
    run,
    summary,
)

NOW = T0 + timedelta(seconds=1)


def active(*runs: object, **fields: object) -> ResourceStatus:
    return ResourceStatus.model_validate(
        {"observedGeneration": 1, "activeRuns": [r.model_dump(by_alias=True) for r in runs], **fields}  # type: ignore[attr-defined]
    )


# ---------------------------------------------------------------- starting runs


def test_a_new_resource_claims_run_g1_before_any_job_exists() -> None:
    decision = decided(observed())
    (claimed,) = decision.claimed
    assert (claimed.id, claimed.number, claimed.uid, claimed.trigger) == ("g1", 1, "new1", "Created")
    assert claimed.job_name == job_name(NAME, UID, "g1")
    assert (claimed.generation, claimed.outcome, claimed.start_time) == (1, "Running", "2026-11-28T12:00:01Z")
    assert decision.create == [claimed]
    assert decision.status.active_runs == [claimed]
    assert decision.status.observed_generation == 1
    assert decision.status.phase == "Running"
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Normal", "RunStarted", f"run g1 (Created) -> Job {claimed.job_name}")
    ]
    assert {c.last_transition_time for c in decision.status.conditions} == {"2026-11-28T12:00:01Z"}
    assert conditions(decision) == {
        "Ready": ("True", "AwaitingFirstRun", 1),
        "Running": ("True", "RunInProgress", 1),
        "Succeeded": ("Unknown", "RunInProgress", 1),
        "Failed": ("Unknown", "RunInProgress", 1),
        "Healthy": ("Unknown", "NoScoreYet", 1),
    }
    assert not decision.release
    assert not decision.delete


def test_nothing_changes_for_a_resource_whose_run_is_still_going() -> None:
    g1 = run()
    seen = observed(status=active(g1), jobs=[job_of(g1)], pods=[pod(g1.job_name)])
    decision = decided(seen)
    assert (decision.create, decision.claimed, decision.ended) == ([], [], [])
    assert (decision.release, decision.delete) == ([], [])
    assert decision.status.active_runs == [g1]
    assert not decision.events


def test_a_claimed_run_whose_job_is_not_seen_is_created_not_claimed_again() -> None:
    g1 = run()
    decision = decided(observed(status=active(g1)))
    assert decision.create == [g1]
    assert decision.claimed == []  # the reconciler confirms the absence by live reads before creating
    assert decision.status.active_runs == [g1]


def test_a_spec_change_runs_under_its_generation() -> None:
    last = run(outcome="Succeeded", completionTime="2026-11-28T12:05:00Z")
    status = ResourceStatus.model_validate(
        {"observedGeneration": 1, "lastRun": last.model_dump(by_alias=True)}
    )
    decision = decided(observed(status=status, generation=3))
    (g3,) = decision.claimed
    assert (g3.id, g3.number, g3.trigger, g3.generation) == ("g3", 2, "SpecChanged", 3)
    assert decision.status.observed_generation == 3
    assert conditions(decision)["Succeeded"] == ("Unknown", "RunInProgress", 3)
    assert conditions(decision)["Ready"] == ("True", "RunSucceeded", 1), "Ready keeps the last outcome"


@pytest.mark.parametrize("tokens", [["a", "b", "a"], ["x", "x2", "x", "x2"]])
def test_every_new_run_now_value_starts_a_new_run_even_a_reused_one(tokens: list[str]) -> None:
    status = ResourceStatus(observed_generation=1)
    ids = []
    for token in tokens:
        decision = decided(observed(status=status, run_now=token))
        (started,) = decision.claimed
        ids.append(started.id)
        assert decision.status.handled_trigger == token
        finished = started.model_copy(
            update={"outcome": "Succeeded", "completion_time": "2026-11-28T12:01:00Z"}
        )
        status = decision.status.model_copy(update={"active_runs": [], "last_run": finished})
    assert ids == [f"m{n}" for n in range(1, len(tokens) + 1)]
    assert len({job_name(NAME, UID, i) for i in ids}) == len(ids)
    assert decided(observed(status=status, run_now=tokens[-1])).claimed == [], "a handled value runs once"


def test_triggers_due_together_start_one_run_that_consumes_them_all() -> None:
    spec = audit_spec(schedule="*/15 * * * *")
    status = ResourceStatus(observed_generation=1, last_schedule_time="2026-11-28T12:00:00Z")
    now = T0 + timedelta(minutes=15, seconds=2)
    decision = decided(observed(spec, status=status, generation=2, run_now="go"), now)
    (started,) = decision.claimed
    assert (started.id, started.trigger, started.scheduled_time) == ("m1", "Manual", "2026-11-28T12:15:00Z")
    assert decision.status.observed_generation == 2
    assert decision.status.handled_trigger == "go"
    assert decision.status.last_schedule_time == "2026-11-28T12:15:00Z"
    assert decided(observed(spec, status=decision.status, generation=2, run_now="go"), now).claimed == []


def test_a_resource_name_with_dots_at_the_length_limit_gets_a_valid_job_name() -> None:
    name = "candles." + ".".join(c * 63 for c in "abc") + "." + "x" * 43 + ".eu-west-1"
    assert len(name) == 253
    (started,) = decided(observed(name=name)).claimed
    assert len(started.job_name) <= 60
    assert started.job_name.replace("-", "").isalnum()
    assert started.job_name.islower()
    assert started.job_name.startswith("candles-" + "a" * 10)
    assert started.job_name.endswith("-g1")


# ---------------------------------------------------------------- ending runs


def test_a_succeeded_job_records_the_outcome_and_the_summary_then_releases_the_job() -> None:
    g1 = run()
    job = job_of(g1, finished=True, succeeded=True)
    seen = observed(
        status=active(g1), jobs=[job], pods=[pod(job.name, phase="Succeeded", exit_code=0, message=summary())]
    )
    decision = decided(seen)
    last = decision.status.last_run
    assert last is not None
    assert (last.outcome, last.reason, last.completion_time) == (
        "Succeeded",
        "RunSucceeded",
        "2026-11-28T12:05:00Z",
    )
    assert decision.status.active_runs == []
    assert decision.status.health_score == 95.0
    assert decision.status.health_level == "healthy"
    assert [d.symbol for d in decision.status.datasets] == ["ETHUSDT", "BTCUSDT"]
    assert decision.status.results is not None
    assert decision.status.results.documents == 3
    assert decision.status.last_successful_time == "2026-11-28T12:05:00Z"
    assert decision.status.consecutive_failures == 0
    assert decision.release == [job.name]
    assert decision.delete == []
    assert decision.status.phase == "Succeeded"
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Normal", "RunSucceeded", f"run g1 succeeded ({job.name})")
    ]
    assert conditions(decision)["Healthy"] == ("True", "HealthAboveThreshold", 1)
    ((ended, outcome),) = decision.ended  # for the run metrics: outcome, reason and duration
    assert ended == last
    assert (outcome.succeeded, outcome.reason, len(outcome.summaries)) == (True, "RunSucceeded", 1)


def test_a_success_without_a_readable_summary_clears_the_previous_numbers() -> None:
    g2 = run("m2", 2, trigger="Manual")
    job = job_of(g2, finished=True, succeeded=True)
    status = active(g2, healthScore=80.0, healthLevel="degraded", lastSuccessfulTime="2026-11-27T00:00:00Z")
    decision = decided(
        observed(
            status=status,
            jobs=[job],
            pods=[pod(job.name, phase="Succeeded", exit_code=0, message="{not json")],
        )
    )
    assert decision.status.health_score is None
    assert decision.status.health_level is None
    assert decision.status.results is None
    assert conditions(decision)["Healthy"] == ("Unknown", "NoSummary", 1)


def test_a_failed_job_reports_the_workers_reason_and_counts_consecutive_failures() -> None:
    g1 = run()
    job = job_of(g1, finished=True, reason="BackoffLimitExceeded")
    failure = summary(None, outcome="Failed", exitCode=3, reason="SourceUnavailable", message="MySQL refused")
    pods = [
        pod(job.name, phase="Failed", name="a", exit_code=3, message=failure, created=T0),
        pod(
            job.name,
            phase="Failed",
            name="b",
            exit_code=3,
            message=failure,
            created=T0 + timedelta(seconds=5),
        ),
    ]
    decision = decided(observed(status=active(g1, consecutiveFailures=2), jobs=[job], pods=pods))
    last = decision.status.last_run
    assert last is not None
    assert (last.outcome, last.reason) == ("Failed", "SourceUnavailable")
    assert last.message == "retries exhausted after 2 attempt(s); last: MySQL refused"
    assert decision.status.consecutive_failures == 3
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Warning", "RunFailed", "run g1 failed: SourceUnavailable: " + last.message)
    ]
    assert [(r.id, o.reason) for r, o in decision.ended] == [("g1", "SourceUnavailable")]
    assert decision.status.phase == "Failed"
    assert conditions(decision)["Failed"] == ("True", "SourceUnavailable", 1)
    assert conditions(decision)["Ready"] == ("False", "SourceUnavailable", 1)
    assert decision.release == [job.name]


def test_a_job_deleted_before_it_finished_cancels_its_run() -> None:
    g1 = run()
    job = job_of(g1, deleting=True)
    decision = decided(observed(status=active(g1), jobs=[job]))
    last = decision.status.last_run
    assert last is not None
    assert (last.outcome, last.reason) == ("Failed", "JobDeleted")
    assert decision.create == []
    assert decision.release == [job.name]


def test_a_finished_job_being_deleted_still_reports_how_it_ended() -> None:
    g1 = run()
    job = job_of(g1, finished=True, succeeded=True, deleting=True)
    decision = decided(observed(status=active(g1), jobs=[job]))
    assert decision.status.last_run is not None
    assert decision.status.last_run.reason == "RunSucceeded"


def test_a_job_of_another_run_under_the_runs_name_is_never_adopted() -> None:
    g1 = run()
    old = job_of(g1, finished=True, succeeded=True, run_uid="somebody-else")
    decision = decided(observed(status=active(g1), jobs=[old]))
    last = decision.status.last_run
    assert last is not None
    assert (last.outcome, last.reason) == ("Failed", "JobRejected")
    assert decision.status.health_score is None


def test_a_job_the_api_server_keeps_refusing_fails_the_run_as_rejected() -> None:
    g1 = run()
    decision = decided(observed(status=active(g1), rejected={g1.uid: "exceeded quota: no-jobs"}))
    last = decision.status.last_run
    assert last is not None
    assert (last.outcome, last.reason, last.message) == ("Failed", "JobRejected", "exceeded quota: no-jobs")
    assert decision.status.consecutive_failures == 1
    assert decision.create == []


@pytest.mark.parametrize(
    ("waiting", "unschedulable", "age", "reason"),
    [
        ("ImagePullBackOff", None, 121, "ImagePullBackOff"),
        ("ImagePullBackOff", None, 119, None),
        ("CreateContainerConfigError", None, 120, "CreateContainerConfigError"),
        ("ContainerCreating", None, 9999, None),
        ("", "0/1 nodes are available", 600, "Unschedulable"),
        ("", "0/1 nodes are available", 599, None),
    ],
)
def test_a_pod_that_cannot_start_fails_the_run_after_its_grace(
    waiting: str, unschedulable: str | None, age: int, reason: str | None
) -> None:
    g1 = run()
    job = job_of(g1)
    stuck = pod(job.name, phase="Pending", waiting=waiting, unschedulable=unschedulable)
    decision = decided(observed(status=active(g1), jobs=[job], pods=[stuck]), T0 + timedelta(seconds=age))
    if reason is None:
        assert decision.status.last_run is None
        assert decision.recheck_at is not None or waiting == "ContainerCreating"
        return
    last = decision.status.last_run
    assert last is not None
    assert (last.outcome, last.reason) == ("Failed", reason)
    assert decision.status.consecutive_failures == 1
    assert decision.delete == [job.name], "an unfinished Job of a recorded run is deleted"
    assert decision.confirm == [job.name], "the cached pods are read again before acting"


def test_an_image_not_allowed_ends_the_run_at_once_without_a_job() -> None:
    decision = decided(observed(image_problem="spec.job.image 'evil' is not allowed"))
    assert decision.claimed == []
    assert decision.create == []
    last = decision.status.last_run
    assert last is not None
    assert (last.id, last.outcome, last.reason) == ("g1", "Failed", "ImageNotAllowed")
    assert decision.status.observed_generation == 1


# ---------------------------------------------------------------- concurrency


def test_forbid_waits_for_the_active_run_and_confirms_it_is_still_running() -> None:
    g1 = run()
    job = job_of(g1)
    decision = decided(observed(status=active(g1), jobs=[job], generation=2, run_now="now"))
    assert decision.claimed == []
    assert decision.status.observed_generation == 1
    assert decision.status.handled_trigger is None
    assert decision.confirm == [job.name]


def test_forbid_starts_the_waiting_trigger_in_the_same_decision_that_records_the_end() -> None:
    g1 = run()
    job = job_of(g1, finished=True, succeeded=True)
    decision = decided(observed(status=active(g1), jobs=[job], generation=2))
    assert decision.status.last_run is not None
    assert decision.status.last_run.id == "g1"
    (g2,) = decision.claimed
    assert (g2.id, g2.number) == ("g2", 2)
    assert decision.status.active_runs == [g2]
    assert decision.release == [job.name]


def test_replace_records_the_active_run_as_replaced_and_deletes_its_job_first() -> None:
    g1 = run()
    spec = audit_spec(concurrencyPolicy="Replace")
    decision = decided(observed(spec, status=active(g1), run_now="again"))
    assert decision.status.last_run is not None
    assert (
        decision.status.last_run.id,
        decision.status.last_run.outcome,
        decision.status.last_run.reason,
    ) == (
        "g1",
        "Failed",
        "Replaced",
    )
    assert decision.status.last_run.message == "replaced by a new run (Manual)"
    assert g1.job_name in decision.delete, "deleted by name even when the cache has not shown it yet"
    assert g1 not in decision.create
    (m2,) = decision.claimed
    assert m2.id == "m2"
    assert decision.status.active_runs == [m2]


def test_allow_runs_side_by_side_and_an_older_run_ending_late_never_hides_a_newer_one() -> None:
    g1, m2 = run(), run("m2", 2, trigger="Manual")
    spec = audit_spec(concurrencyPolicy="Allow")
    decision = decided(observed(spec, status=active(g1), run_now="x"))
    assert [r.id for r in decision.status.active_runs] == ["g1", "m2"]

    newer_done = job_of(m2, finished=True, succeeded=True)
    pods = [pod(newer_done.name, phase="Succeeded", exit_code=0, message=summary(70.0))]
    status = decided(observed(spec, status=active(g1, m2), jobs=[job_of(g1), newer_done], pods=pods)).status
    assert status.last_run is not None
    assert status.last_run.id == "m2"
    assert status.health_score == 70.0

    older_done = job_of(g1, finished=True, succeeded=True)
    pods = [pod(older_done.name, phase="Succeeded", exit_code=0, message=summary(99.0))]
    decision = decided(observed(spec, status=status, jobs=[older_done], pods=pods))
    assert decision.status.last_run is not None
    assert decision.status.last_run.id == "m2", "lastRun never goes back to an older run"
    assert decision.status.health_score == 70.0
    assert [e.message for e in decision.events] == [f"run g1 succeeded ({g1.job_name})"]
    assert decision.status.active_runs == []


# ---------------------------------------------------------------- suspended and invalid


def test_suspend_drops_run_now_takes_the_new_spec_and_starts_nothing() -> None:
    spec = audit_spec(suspend=True, schedule="*/5 * * * *")
    status = ResourceStatus(observed_generation=1, last_schedule_time="2026-11-28T12:00:00Z")
    decision = decided(observed(spec, status=status, generation=2, run_now="t"), T0 + timedelta(minutes=11))
    assert decision.claimed == []
    assert decision.status.handled_trigger == "t"
    assert decision.status.observed_generation == 2
    assert decision.status.missed_runs == 0
    assert decision.status.next_run_time is None
    assert decision.status.phase == "Suspended"
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Normal", "TriggerIgnored", "run-now 't' ignored: the resource is suspended")
    ]


def test_an_invalid_spec_is_failed_with_the_reason_so_waiters_stop() -> None:
    decision = decided(observed(invalid="invalid spec: schedule: names no date", run_now="x"))
    assert decision.claimed == []
    assert decision.status.handled_trigger == "x", "dropped, not kept for when the spec is fixed"
    assert [(e.type, e.reason, e.message) for e in decision.events] == [
        ("Normal", "TriggerIgnored", "run-now 'x' ignored: the spec is invalid")
    ]
    assert decision.status.observed_generation == 1
    assert decision.status.phase == "Failed"
    assert conditions(decision) == {
        "Ready": ("False", "InvalidSpec", 1),
        "Running": ("False", "NoRunInProgress", 1),
        "Succeeded": ("False", "InvalidSpec", 1),
        "Failed": ("True", "InvalidSpec", 1),
    }


# ---------------------------------------------------------------- history


def test_jobs_of_recorded_runs_beyond_the_history_limits_are_deleted_oldest_first() -> None:
    runs = [run(f"m{n}", n, trigger="Manual") for n in range(1, 6)]
    jobs = [
        job_of(
            r,
            finished=True,
            succeeded=r.number != 3,
            created=T0 + timedelta(minutes=r.number),
            finalized=False,
        )
        for r in runs
    ]
    status = ResourceStatus(
        observed_generation=1, last_run=runs[-1].model_copy(update={"outcome": "Succeeded"})
    )
    spec = audit_spec(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=0)
    decision = decided(observed(spec, status=status, jobs=jobs))
    assert decision.delete == [runs[0].job_name, runs[1].job_name, runs[2].job_name]
    assert decision.release == []


def test_history_limits_never_touch_a_job_whose_run_is_still_active() -> None:
    g1 = run()
    spec = audit_spec(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0)
    decision = decided(observed(spec, status=active(g1), jobs=[job_of(g1)]))
    assert decision.delete == []
    assert decision.release == []


def test_history_to_delete_keeps_the_newest_and_ignores_unfinished() -> None:
    r = [run(f"m{n}", n) for n in range(4)]
    jobs = [
        job_of(r[0], finished=True, succeeded=True, created=T0),
        job_of(r[1], finished=True, succeeded=True, created=T0 + timedelta(1)),
        job_of(r[2], finished=True, succeeded=False, created=T0 + timedelta(2)),
        job_of(r[3], created=T0 - timedelta(1)),
    ]
    assert history_to_delete(jobs, 1, 1) == [r[0].job_name]
    assert history_to_delete(jobs, 0, 0) == [r[0].job_name, r[1].job_name, r[2].job_name]
    assert history_to_delete(jobs, 5, 5) == []


def test_status_lists_the_worst_datasets_up_to_the_limit() -> None:
    g1 = run()
    job = job_of(g1, finished=True, succeeded=True)
    listed = [{"symbol": f"S{i:02}USDT", "interval": "1h", "score": float(50 + i)} for i in range(12)]
    message = summary(datasets=listed, counts={"datasets": 12})
    pods = [pod(job.name, phase="Succeeded", exit_code=0, message=message)]
    decision = decided(observed(status=active(g1), jobs=[job], pods=pods))
    assert [d.symbol for d in decision.status.datasets] == [f"S{i:02}USDT" for i in range(10)]


def test_the_next_look_is_the_earliest_any_active_run_needs() -> None:
    g1, m2 = run(), run("m2", 2, trigger="Manual")
    spec = audit_spec(concurrencyPolicy="Allow")
    pods = [
        pod(g1.job_name, phase="Pending", waiting="ImagePullBackOff"),  # counts as stuck at T0 + 120 s
        pod(m2.job_name, phase="Running"),
    ]
    decision = decided(observed(spec, status=active(g1, m2), jobs=[job_of(g1), job_of(m2)], pods=pods))
    assert decision.recheck_at == T0 + timedelta(seconds=120)
    assert decision.events == []


def test_a_job_being_deleted_takes_no_place_in_the_history() -> None:
    older, newer = run("m1", 1, trigger="Manual"), run("m2", 2, trigger="Manual")
    jobs = [
        job_of(older, finished=True, succeeded=True, created=T0, finalized=False),
        job_of(
            newer, finished=True, succeeded=True, created=T0 + timedelta(1), deleting=True, finalized=False
        ),
    ]
    status = ResourceStatus(observed_generation=1, last_run=newer.model_copy(update={"outcome": "Succeeded"}))
    spec = audit_spec(successfulRunsHistoryLimit=1)
    decision = decided(observed(spec, status=status, jobs=jobs))
    assert decision.delete == [], "the older Job is the one history keeps"


def test_forbid_confirms_every_job_it_acts_on_when_one_run_is_stuck_and_another_waits() -> None:
    """Two runs active (started under Allow, then the policy became Forbid): one's pod cannot pull its image,
    the other runs. Both Jobs are read live before the stuck run is failed and the trigger waits."""
    g1, m2 = run(), run("m2", 2, trigger="Manual")
    pods = [pod(g1.job_name, phase="Pending", waiting="ImagePullBackOff"), pod(m2.job_name, phase="Running")]
    seen = observed(status=active(g1, m2), jobs=[job_of(g1), job_of(m2)], pods=pods, run_now="again")
    decision = decided(seen, T0 + timedelta(seconds=121))
    assert [(r.id, o.reason) for r, o in decision.ended] == [("g1", "ImagePullBackOff")]
    assert decision.claimed == []
    assert sorted(decision.confirm) == sorted([g1.job_name, m2.job_name])
