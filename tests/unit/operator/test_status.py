"""Status from runs: every condition, reason, phase and transition the operator can write, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from datamanager.api.dataaudit import HealthThresholds
from datamanager.api.status import Condition, ResourceStatus
from datamanager.contract import RunSummary
from datamanager_operator.status import (
    conditions_for,
    iso,
    level_for,
    newest_run,
    phase_of,
    results_of,
    with_transition_times,
)
from tests.unit.operator.observed import T0, run

THRESHOLDS = HealthThresholds()


def status(**fields: Any) -> ResourceStatus:
    return ResourceStatus.model_validate(fields)


def ref(run_id: str, number: int, outcome: str, generation: int = 1, **fields: Any) -> dict[str, Any]:
    return run(run_id, number, generation=generation, outcome=outcome, **fields).model_dump(by_alias=True)


def table(found: list[Condition]) -> dict[str, tuple[str, str, str, int | None]]:
    return {c.type: (c.status, c.reason, c.message, c.observed_generation) for c in found}


SUCCEEDED = ref("g1", 1, "Succeeded")
FAILED = ref("g2", 2, "Failed", generation=2, reason="SourceUnavailable", message="MySQL refused")
RUNNING = ref("m3", 3, "Running", generation=2)


@pytest.mark.parametrize(
    ("fields", "thresholds", "expected"),
    [
        (
            {},
            None,
            {
                "Ready": ("True", "AwaitingFirstRun", "no run has finished yet", 5),
                "Running": ("False", "NoRunInProgress", "", 5),
            },
        ),
        (
            {"observedGeneration": 1, "lastRun": SUCCEEDED},
            None,
            {
                "Ready": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Running": ("False", "NoRunInProgress", "", 1),
                "Succeeded": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Failed": ("False", "RunSucceeded", "run g1 succeeded", 1),
            },
        ),
        (
            {"observedGeneration": 2, "lastRun": FAILED},
            None,
            {
                "Ready": ("False", "SourceUnavailable", "MySQL refused", 2),
                "Running": ("False", "NoRunInProgress", "", 2),
                "Succeeded": ("False", "SourceUnavailable", "MySQL refused", 2),
                "Failed": ("True", "SourceUnavailable", "MySQL refused", 2),
            },
        ),
        (
            {"observedGeneration": 2, "lastRun": FAILED, "activeRuns": [RUNNING]},
            None,
            {
                "Ready": ("False", "SourceUnavailable", "MySQL refused", 2),
                "Running": ("True", "RunInProgress", f"run m3 ({RUNNING['jobName']})", 2),
                "Succeeded": ("Unknown", "RunInProgress", f"run m3 ({RUNNING['jobName']}) is in progress", 2),
                "Failed": ("Unknown", "RunInProgress", f"run m3 ({RUNNING['jobName']}) is in progress", 2),
            },
        ),
        (
            {"observedGeneration": 1, "lastRun": SUCCEEDED, "healthScore": 89.99, "healthLevel": "degraded"},
            THRESHOLDS,
            {
                "Ready": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Running": ("False", "NoRunInProgress", "", 1),
                "Succeeded": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Failed": ("False", "RunSucceeded", "run g1 succeeded", 1),
                "Healthy": (
                    "False",
                    "HealthBelowThreshold",
                    "health score 89.99 (degraded); healthy at 90 or more",
                    1,
                ),
            },
        ),
        (
            {"observedGeneration": 1, "lastRun": SUCCEEDED, "healthScore": 90.0, "healthLevel": "healthy"},
            THRESHOLDS,
            {
                "Ready": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Running": ("False", "NoRunInProgress", "", 1),
                "Succeeded": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Failed": ("False", "RunSucceeded", "run g1 succeeded", 1),
                "Healthy": (
                    "True",
                    "HealthAboveThreshold",
                    "health score 90.0 (healthy); healthy at 90 or more",
                    1,
                ),
            },
        ),
        (
            {"observedGeneration": 1, "lastRun": SUCCEEDED, "lastSuccessfulTime": "2026-11-28T12:05:00Z"},
            THRESHOLDS,
            {
                "Ready": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Running": ("False", "NoRunInProgress", "", 1),
                "Succeeded": ("True", "RunSucceeded", "run g1 succeeded", 1),
                "Failed": ("False", "RunSucceeded", "run g1 succeeded", 1),
                "Healthy": (
                    "Unknown",
                    "NoSummary",
                    "the last successful run left no readable summary: no score to show",
                    1,
                ),
            },
        ),
    ],
)
def test_conditions_for_each_state(
    fields: dict[str, Any],
    thresholds: HealthThresholds | None,
    expected: dict[str, tuple[str, str, str, int]],
) -> None:
    found = conditions_for(status(**fields), thresholds, 5, None)
    assert table(found) == expected
    assert {c.last_transition_time for c in found} == {""}, "with_transition_times sets them"


def older(run_id: str, number: int, outcome: str, **fields: Any) -> dict[str, Any]:
    """A run recorded by an operator that did not write its generation."""
    body = ref(run_id, number, outcome, **fields)
    del body["generation"]
    return body


def test_runs_recorded_without_a_generation_are_described_at_the_resources_generation() -> None:
    done = older("g1", 1, "Succeeded")
    found = table(conditions_for(status(lastRun=done, healthScore=95.0), THRESHOLDS, 4, None))
    assert {kind: c[3] for kind, c in found.items()} == {
        "Ready": 4,
        "Running": 4,
        "Succeeded": 4,
        "Failed": 4,
        "Healthy": 4,
    }
    failed = older("g1", 1, "Failed", reason="SinkUnavailable")  # and without a message
    found = table(conditions_for(status(lastRun=failed), None, 4, None))
    assert found["Ready"] == ("False", "SinkUnavailable", "", 4)
    assert found["Failed"] == ("True", "SinkUnavailable", "", 4)
    going = [older("g1", 1, "Running"), older("m2", 2, "Running")]
    found = table(conditions_for(status(activeRuns=going), None, 4, None))
    names = [r["jobName"] for r in going]
    assert found["Running"] == ("True", "RunInProgress", f"run g1 ({names[0]}), m2 ({names[1]})", 4)
    assert found["Succeeded"] == ("Unknown", "RunInProgress", f"run m2 ({names[1]}) is in progress", 4)


def test_an_invalid_spec_fails_with_its_reason_whatever_ran_before() -> None:
    found = table(conditions_for(status(lastRun=SUCCEEDED, activeRuns=[RUNNING]), THRESHOLDS, 7, "bad: x"))
    assert found["Ready"] == ("False", "InvalidSpec", "bad: x", 7)
    assert found["Succeeded"] == ("False", "InvalidSpec", "bad: x", 7)
    assert found["Failed"] == ("True", "InvalidSpec", "bad: x", 7)
    assert found["Running"][:2] == ("True", "RunInProgress")
    assert found["Healthy"] == ("Unknown", "NoScoreYet", "no successful audit yet", 7)


def test_a_failed_run_without_a_reason_is_runfailed() -> None:
    found = table(conditions_for(status(lastRun=ref("g1", 1, "Failed")), None, 1, None))
    assert found["Ready"][:2] == ("False", "RunFailed")
    assert found["Failed"][:2] == ("True", "RunFailed")


def test_the_newest_run_decides_succeeded_and_failed() -> None:
    assert newest_run(status()) is None
    newest = newest_run(status(lastRun=ref("m5", 5, "Succeeded"), activeRuns=[ref("g2", 2, "Running")]))
    assert newest is not None
    assert newest.id == "m5"
    found = table(
        conditions_for(
            status(lastRun=ref("m5", 5, "Succeeded"), activeRuns=[ref("g2", 2, "Running")]), None, 1, None
        )
    )
    assert found["Succeeded"][:2] == ("True", "RunSucceeded"), (
        "an older run still going does not hide the newest result"
    )


@pytest.mark.parametrize(
    ("fields", "suspended", "invalid", "phase"),
    [
        ({}, False, False, "Pending"),
        ({}, True, False, "Suspended"),
        ({}, False, True, "Failed"),
        ({"activeRuns": [RUNNING]}, True, True, "Running"),
        ({"lastRun": SUCCEEDED}, False, False, "Succeeded"),
        ({"lastRun": FAILED}, False, False, "Failed"),
        ({"lastRun": FAILED}, True, False, "Suspended"),
    ],
)
def test_phase(fields: dict[str, Any], suspended: bool, invalid: bool, phase: str) -> None:
    assert phase_of(status(**fields), suspended, invalid) == phase


def test_transition_times_move_only_when_the_status_changes() -> None:
    old = [
        Condition(type="Ready", status="True", reason="A", last_transition_time="t0"),
        Condition(type="Running", status="False", reason="B", last_transition_time="t0"),
        Condition(type="Failed", status="False", reason="C", last_transition_time=""),
    ]
    new = [
        Condition(type="Ready", status="True", reason="Other", last_transition_time=""),
        Condition(type="Running", status="True", reason="B", last_transition_time=""),
        Condition(type="Failed", status="False", reason="C", last_transition_time=""),
        Condition(type="Healthy", status="Unknown", reason="D", last_transition_time=""),
    ]
    times = {c.type: c.last_transition_time for c in with_transition_times(new, old, "t1")}
    assert times == {"Ready": "t0", "Running": "t1", "Failed": "t1", "Healthy": "t1"}


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (100, "healthy"),
        (90, "healthy"),
        (89.99, "degraded"),
        (70, "degraded"),
        (69.9, "unhealthy"),
        (50, "unhealthy"),
        (49.9, "critical"),
        (0, "critical"),
    ],
)
def test_levels(score: float, level: str) -> None:
    assert level_for(score, THRESHOLDS) == level


def _summary(
    score: float | None, datasets: int | None, documents: int, names: list[tuple[str, float | None]]
) -> RunSummary:
    return RunSummary.model_validate(
        {
            "job": "audit",
            "outcome": "Succeeded",
            "exitCode": 0,
            "reason": "Completed",
            "message": "",
            "healthScore": score,
            "counts": {} if datasets is None else {"datasets": datasets},
            "results": {"database": "dm", "collection": "audit", "runId": "r", "documents": documents},
            "datasets": [
                {
                    "symbol": s,
                    "interval": "1h",
                    "score": v,
                    "level": None if v is None else level_for(v, THRESHOLDS),
                }
                for s, v in names
            ],
        }
    )


def test_results_weight_shards_by_their_datasets_and_list_the_worst_first() -> None:
    shards = [
        _summary(100.0, 3, 4, [("AAA", 100.0), ("BBB", 100.0), ("CCC", 100.0)]),
        _summary(40.0, 1, 2, [("DDD", 40.0)]),
        _summary(None, 0, 1, [("EEE", None)]),
    ]
    fields = results_of(shards, THRESHOLDS, 3)
    assert fields["health_score"] == 85.0  # (3 x 100 + 1 x 40) / 4
    assert fields["health_level"] == "degraded"
    assert [d.symbol for d in fields["datasets"]] == [
        "DDD",
        "AAA",
        "BBB",
    ]  # worst first, unscored last, cut at 3
    assert fields["results"].documents == 7
    assert fields["results"].run_id == "r"


def test_results_of_analytics_have_no_score_and_no_summaries_clear_everything() -> None:
    fields = results_of([_summary(100.0, 1, 5, [("AAA", None)])], None, 10)
    assert fields["health_score"] is None
    assert fields["health_level"] is None
    assert fields["results"].documents == 5
    assert results_of([], THRESHOLDS, 10) == {
        "health_score": None,
        "health_level": None,
        "datasets": [],
        "results": None,
    }


def test_a_shard_counting_no_datasets_still_weighs_one() -> None:
    fields = results_of([_summary(100.0, 0, 1, []), _summary(0.0, 0, 1, [])], THRESHOLDS, 10)
    assert fields["health_score"] == 50.0


def test_iso_is_whole_seconds_utc() -> None:
    assert iso(T0.replace(microsecond=999999)) == "2026-11-28T12:00:00Z"


def test_a_shard_weighs_by_the_datasets_it_counted_not_by_the_few_it_lists() -> None:
    """A summary lists the worst datasets only (it must fit 4096 bytes); counts.datasets has them all."""
    shards = [_summary(100.0, 10, 1, [("AAA", 100.0)]), _summary(45.0, 1, 1, [("BBB", 45.0)])]
    assert results_of(shards, THRESHOLDS, 10)["health_score"] == 95.0  # (10 x 100 + 1 x 45) / 11


def test_a_shard_that_counted_nothing_weighs_by_the_datasets_it_lists() -> None:
    shards = [
        _summary(100.0, None, 1, [("AAA", 100.0), ("BBB", 100.0)]),
        _summary(40.0, None, 1, [("C", 40.0)]),
    ]
    assert results_of(shards, THRESHOLDS, 10)["health_score"] == 80.0  # (2 x 100 + 1 x 40) / 3


def test_the_health_score_shows_two_decimals() -> None:
    shards = [_summary(100.0, 1, 1, []), _summary(0.0, 2, 1, [])]
    fields = results_of(shards, THRESHOLDS, 10)
    assert fields["health_score"] == 33.33
    assert fields["health_level"] == "critical"


def test_datasets_keep_their_score_and_level_and_unscored_ones_go_last_in_order() -> None:
    shards = [
        _summary(60.0, 4, 1, [("AAA", None), ("BBB", 80.0)]),
        _summary(60.0, 4, 1, [("CCC", None), ("DDD", 40.0)]),
    ]
    datasets = results_of(shards, THRESHOLDS, 10)["datasets"]
    assert [(d.symbol, d.interval, d.score, d.level) for d in datasets] == [
        ("DDD", "1h", 40.0, "critical"),
        ("BBB", "1h", 80.0, "degraded"),
        ("AAA", "1h", None, None),
        ("CCC", "1h", None, None),
    ]
