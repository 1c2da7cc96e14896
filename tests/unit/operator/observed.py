"""Building blocks for tests of the pure decision: specs, Jobs and pods as the informers would see them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from datamanager.api.analyticsjob import AnalyticsJobSpec
from datamanager.api.common import RunSpecBase
from datamanager.api.dataaudit import DataAuditSpec
from datamanager.api.status import ResourceStatus, RunRef
from datamanager.contract import RunSummary
from datamanager_operator.model import job_name
from datamanager_operator.planning import Decision, Limits, Observed, decide
from datamanager_operator.views import JobView, PodView

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NAME, UID = "majors", "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
LIMITS = Limits(stuck_pod_seconds=120, unschedulable_seconds=600, dataset_status_limit=10)


def audit_spec(**fields: Any) -> DataAuditSpec:
    base: dict[str, Any] = {
        "source": {"dsnSecretRef": {"name": "db", "key": "dsn"}},
        "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}},
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "intervals": ["1h"],
    }
    return DataAuditSpec.model_validate({**base, **fields})


def analytics_spec(**fields: Any) -> AnalyticsJobSpec:
    base: dict[str, Any] = {
        "source": {"dsnSecretRef": {"name": "db", "key": "dsn"}},
        "sink": {"uriSecretRef": {"name": "mongo", "key": "uri"}},
        "symbols": ["BTCUSDT"],
        "intervals": ["1h"],
    }
    return AnalyticsJobSpec.model_validate({**base, **fields})


def run(
    run_id: str = "g1",
    number: int = 1,
    uid: str | None = None,
    trigger: str = "Created",
    generation: int = 1,
    **fields: Any,
) -> RunRef:
    return RunRef.model_validate(
        {
            "id": run_id,
            "number": number,
            "uid": uid or f"u{number}",
            "jobName": job_name(NAME, UID, run_id),
            "trigger": trigger,
            "generation": generation,
            "startTime": "2026-11-28T12:00:00Z",
            "outcome": "Running",
            **fields,
        }
    )


def job_of(
    ref: RunRef,
    *,
    finished: bool = False,
    succeeded: bool = False,
    deleting: bool = False,
    finalized: bool = True,
    reason: str = "",
    message: str = "",
    created: datetime = T0,
    run_uid: str | None = None,
) -> JobView:
    return JobView(
        namespace="team-a",
        name=ref.job_name,
        uid=f"job-{ref.uid}",
        version=1,
        owner=None,
        resource_uid=UID,
        run_id=ref.id,
        run_uid=ref.uid if run_uid is None else run_uid,
        created=created,
        deleting=deleting,
        finalized=finalized,
        finished=finished,
        succeeded=succeeded,
        reason=reason or ("Completed" if succeeded else ("BackoffLimitExceeded" if finished else "")),
        message=message,
        completion_time="2026-11-28T12:05:00Z" if finished else None,
    )


def summary(score: float | None = 95.0, **fields: Any) -> str:
    body: dict[str, Any] = {
        "job": "audit",
        "outcome": "Succeeded",
        "exitCode": 0,
        "reason": "Completed",
        "message": "2 datasets audited",
        "healthScore": score,
        "counts": {"datasets": 2},
        "results": {"database": "dm", "collection": "audit", "runId": "r", "documents": 3},
        "datasets": [
            {"symbol": "BTCUSDT", "interval": "1h", "score": 100.0, "level": "healthy"},
            {"symbol": "ETHUSDT", "interval": "1h", "score": 90.0, "level": "healthy"},
        ],
        **fields,
    }
    RunSummary.model_validate(body)
    return json.dumps(body)


def pod(
    job: str,
    *,
    phase: str = "Running",
    name: str | None = None,
    index: int = 0,
    created: datetime = T0,
    exit_code: int | None = None,
    message: str = "",
    waiting: str = "",
    unschedulable: str | None = None,
) -> PodView:
    return PodView(
        namespace="team-a",
        name=name or f"{job}-{index}-x",
        uid=f"pod-{name or job}-{index}",
        version=1,
        job_name=job,
        index=index,
        created=created,
        phase=phase,
        waiting_reason=waiting,
        waiting_message=f"{waiting} message" if waiting else "",
        exit_code=exit_code,
        terminated_reason="Completed" if exit_code == 0 else ("Error" if exit_code else ""),
        summary=message,
        unschedulable=unschedulable,
    )


def observed(
    spec: RunSpecBase | None = None,
    *,
    status: ResourceStatus | None = None,
    jobs: Sequence[JobView] = (),
    pods: Sequence[PodView] = (),
    generation: int = 1,
    run_now: str | None = None,
    created: datetime = T0,
    rejected: Mapping[str, str] | None = None,
    image_problem: str | None = None,
    invalid: str | None = None,
    name: str = NAME,
) -> Observed:
    spec = spec if spec is not None or invalid else audit_spec()
    by_job: dict[str, list[PodView]] = {}
    for p in pods:
        by_job.setdefault(p.job_name, []).append(p)
    thresholds = spec.thresholds if isinstance(spec, DataAuditSpec) else None
    return Observed(
        name=name,
        uid=UID,
        generation=generation,
        created=created,
        run_now=run_now,
        spec=spec,
        invalid=invalid,
        thresholds=thresholds,
        status=status if status is not None else ResourceStatus(),
        jobs={j.name: j for j in jobs},
        pods=by_job,
        rejected=rejected or {},
        image_problem=image_problem,
    )


def uids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"new{next(counter)}"


def decided(seen: Observed, now: datetime = T0 + timedelta(seconds=1)) -> Decision:
    return decide(seen, now, LIMITS, uids())


def conditions(decision: Decision) -> dict[str, tuple[str, str, int | None]]:
    return {c.type: (c.status, c.reason, c.observed_generation) for c in decision.status.conditions}
