"""A resource's status from its runs: conditions in the Kubernetes form, the phase, and the numbers of the
last successful run (health, datasets, results location). Pure functions of what is observed.

Conditions, each with the ``observedGeneration`` of the run it describes:

- ``Ready``: the last finished run's outcome; True ``AwaitingFirstRun`` before any; False ``InvalidSpec``.
  It does not move while a run is in progress.
- ``Running``: True ``RunInProgress`` while any run is active.
- ``Succeeded`` / ``Failed``: the most recent run. ``Unknown`` (``RunInProgress``) from the moment a run
  starts, so ``kubectl wait --for=condition=Succeeded`` after a change waits for the run of that change;
  ``Failed=True`` with ``InvalidSpec`` for a spec the operator cannot run.
- ``Healthy`` (audits): the health score against ``thresholds.healthy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from datamanager.api.dataaudit import HealthThresholds
from datamanager.api.status import Condition, DatasetStatus, ResourceStatus, ResultsStatus, RunRef
from datamanager.contract import RunSummary


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def level_for(score: float, thresholds: HealthThresholds) -> str:
    if score >= thresholds.healthy:
        return "healthy"
    if score >= thresholds.degraded:
        return "degraded"
    if score >= thresholds.unhealthy:
        return "unhealthy"
    return "critical"


def results_of(
    summaries: Sequence[RunSummary], thresholds: HealthThresholds | None, limit: int
) -> dict[str, Any]:
    """The status fields a successful run sets, from one summary per shard: the score (audits: thresholds
    given) weighted by each shard's datasets, the worst datasets first, documents summed. A run without
    summaries clears them all: an older run's numbers are never shown as current."""
    fields: dict[str, Any] = {"health_score": None, "health_level": None, "datasets": [], "results": None}
    scored = [s for s in summaries if s.health_score is not None]
    if scored and thresholds is not None:
        weights = [max(s.counts.get("datasets", len(s.datasets)), 1) for s in scored]
        score = sum(w * (s.health_score or 0.0) for w, s in zip(weights, scored, strict=True)) / sum(weights)
        fields["health_score"] = round(score, 2)
        fields["health_level"] = level_for(score, thresholds)
    datasets = sorted(
        (d for s in summaries for d in s.datasets),
        key=lambda d: (d.score is None, d.score if d.score is not None else 0.0),
    )
    fields["datasets"] = [
        DatasetStatus(symbol=d.symbol, interval=d.interval, score=d.score, level=d.level)
        for d in datasets[:limit]
    ]
    located = [s.results for s in summaries if s.results is not None]
    if located:
        fields["results"] = ResultsStatus(
            database=located[0].database,
            collection=located[0].collection,
            run_id=located[0].run_id,
            documents=sum(r.documents for r in located),
        )
    return fields


def newest_run(status: ResourceStatus) -> RunRef | None:
    runs = [*status.active_runs, *([status.last_run] if status.last_run else [])]
    return max(runs, key=lambda r: r.number, default=None)


def _condition(kind: str, state: bool | None, reason: str, message: str, generation: int) -> Condition:
    return Condition(
        type=kind,
        status="Unknown" if state is None else ("True" if state else "False"),
        reason=reason,
        message=message,
        last_transition_time="",
        observed_generation=generation,
    )


def _run_generation(run: RunRef, fallback: int) -> int:
    return run.generation if run.generation is not None else fallback


def conditions_for(
    status: ResourceStatus, thresholds: HealthThresholds | None, generation: int, invalid: str | None
) -> list[Condition]:
    """The conditions ``status`` implies; ``thresholds`` only for audits (they get ``Healthy``).
    ``lastTransitionTime`` is left empty: see ``with_transition_times``."""
    last, newest = status.last_run, newest_run(status)
    result: list[Condition] = []
    if invalid:
        result.append(_condition("Ready", False, "InvalidSpec", invalid, generation))
    elif last is None:
        result.append(_condition("Ready", True, "AwaitingFirstRun", "no run has finished yet", generation))
    elif last.outcome == "Succeeded":
        result.append(
            _condition(
                "Ready", True, "RunSucceeded", f"run {last.id} succeeded", _run_generation(last, generation)
            )
        )
    else:
        reason = last.reason or "RunFailed"
        result.append(
            _condition("Ready", False, reason, last.message or "", _run_generation(last, generation))
        )

    if status.active_runs:
        running = ", ".join(f"{r.id} ({r.job_name})" for r in status.active_runs)
        top = max(status.active_runs, key=lambda r: r.number)
        result.append(
            _condition("Running", True, "RunInProgress", f"run {running}", _run_generation(top, generation))
        )
    else:
        result.append(
            _condition("Running", False, "NoRunInProgress", "", status.observed_generation or generation)
        )

    if invalid:
        result.append(_condition("Succeeded", False, "InvalidSpec", invalid, generation))
        result.append(_condition("Failed", True, "InvalidSpec", invalid, generation))
    elif newest is not None and newest.outcome == "Running":
        message = f"run {newest.id} ({newest.job_name}) is in progress"
        run_generation = _run_generation(newest, generation)
        result.append(_condition("Succeeded", None, "RunInProgress", message, run_generation))
        result.append(_condition("Failed", None, "RunInProgress", message, run_generation))
    elif last is not None:
        ok = last.outcome == "Succeeded"
        reason = "RunSucceeded" if ok else last.reason or "RunFailed"
        message = f"run {last.id} succeeded" if ok else last.message or ""
        run_generation = _run_generation(last, generation)
        result.append(_condition("Succeeded", ok, reason, message, run_generation))
        result.append(_condition("Failed", not ok, reason, message, run_generation))

    if thresholds is not None:
        score = status.health_score
        scored_generation = _run_generation(last, generation) if last else generation
        if score is not None:
            healthy = score >= thresholds.healthy
            result.append(
                _condition(
                    "Healthy",
                    healthy,
                    "HealthAboveThreshold" if healthy else "HealthBelowThreshold",
                    f"health score {score} ({status.health_level}); healthy at {thresholds.healthy} or more",
                    scored_generation,
                )
            )
        elif status.last_successful_time is not None:
            result.append(
                _condition(
                    "Healthy",
                    None,
                    "NoSummary",
                    "the last successful run left no readable summary: no score to show",
                    scored_generation,
                )
            )
        else:
            result.append(_condition("Healthy", None, "NoScoreYet", "no successful audit yet", generation))
    return result


def phase_of(status: ResourceStatus, suspended: bool, invalid: bool) -> str:
    if status.active_runs:
        return "Running"
    if invalid:
        return "Failed"
    if suspended:
        return "Suspended"
    outcome = status.last_run.outcome if status.last_run else None
    return outcome if outcome in ("Succeeded", "Failed") else "Pending"


def with_transition_times(new: list[Condition], old: Sequence[Condition], now: str) -> list[Condition]:
    """lastTransitionTime moves only when a condition's status changes (Kubernetes convention)."""
    previous = {c.type: c for c in old}
    result = []
    for cond in new:
        before = previous.get(cond.type)
        same = before is not None and before.status == cond.status and bool(before.last_transition_time)
        moment = before.last_transition_time if same and before is not None else now
        result.append(cond.model_copy(update={"last_transition_time": moment}))
    return result
