"""Building a resource's status from the plan, the run and the summaries; written only when it changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from datamanager.api.dataaudit import DataAuditSpec, HealthThresholds
from datamanager.contract import RunSummary

Body = dict[str, Any]


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


def combine(summaries: list[RunSummary], spec: Any, limit: int) -> Body:
    """Status fields from one summary per shard: score weighted by datasets, worst datasets first."""
    if not summaries:
        return {}
    fields: Body = {}
    scored = [s for s in summaries if s.health_score is not None]
    if scored and isinstance(spec, DataAuditSpec):
        weights = [max(s.counts.get("datasets", len(s.datasets)), 1) for s in scored]
        score = sum(w * (s.health_score or 0.0) for w, s in zip(weights, scored, strict=True)) / sum(weights)
        fields["healthScore"] = round(score, 2)
        fields["healthLevel"] = level_for(score, spec.thresholds)
    datasets = [d for s in summaries for d in s.datasets]
    datasets.sort(key=lambda d: (d.score is None, d.score if d.score is not None else 0.0))
    fields["datasets"] = [
        {
            k: v
            for k, v in {
                "symbol": d.symbol,
                "interval": d.interval,
                "score": d.score,
                "level": d.level,
            }.items()
            if v is not None
        }
        for d in datasets[:limit]
    ]
    located = [s.results for s in summaries if s.results is not None]
    if located:
        first = located[0]
        fields["results"] = {
            "database": first.database,
            "collection": first.collection,
            "runId": first.run_id,
            "documents": sum(r.documents for r in located),
        }
    return fields


def condition(kind: str, status: bool | None, reason: str, message: str, generation: int) -> Body:
    return {
        "type": kind,
        "status": "Unknown" if status is None else ("True" if status else "False"),
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def conditions_for(status: Body, spec: Any, generation: int, invalid: str | None) -> list[Body]:
    last = status.get("lastRun") or {}
    active = status.get("activeRun")
    outcome = last.get("outcome")
    result: list[Body] = []
    if invalid:
        result.append(condition("Ready", False, "InvalidSpec", invalid, generation))
    elif outcome == "Failed":
        result.append(
            condition(
                "Ready", False, last.get("reason") or "RunFailed", last.get("message") or "", generation
            )
        )
    elif outcome == "Succeeded":
        result.append(condition("Ready", True, "RunSucceeded", f"run {last['id']} succeeded", generation))
    else:
        result.append(condition("Ready", True, "AwaitingFirstRun", "no run has finished yet", generation))
    if active:
        result.append(
            condition(
                "Running", True, "RunInProgress", f"run {active['id']} ({active['jobName']})", generation
            )
        )
    else:
        result.append(condition("Running", False, "NoRunInProgress", "", generation))
    if outcome:
        ok = outcome == "Succeeded"
        reason = "RunSucceeded" if ok else last.get("reason") or "RunFailed"
        message = last.get("message") or ""
        result.append(condition("Succeeded", ok, reason, message, generation))
        result.append(condition("Failed", not ok, reason, message, generation))
    if isinstance(spec, DataAuditSpec):
        score = status.get("healthScore")
        if score is None:
            result.append(condition("Healthy", None, "NoScoreYet", "no successful audit yet", generation))
        else:
            healthy = score >= spec.thresholds.healthy
            reason = "HealthAboveThreshold" if healthy else "HealthBelowThreshold"
            level = status.get("healthLevel")
            message = f"health score {score} ({level}); healthy at {spec.thresholds.healthy} or more"
            result.append(condition("Healthy", healthy, reason, message, generation))
    return result


def phase_of(status: Body, suspended: bool) -> str:
    if status.get("activeRun"):
        return "Running"
    if suspended:
        return "Suspended"
    outcome = (status.get("lastRun") or {}).get("outcome")
    return str(outcome) if outcome in ("Succeeded", "Failed") else "Pending"


def with_transition_times(new: list[Body], old: list[Body], now: str) -> list[Body]:
    """lastTransitionTime moves only when a condition's status changes (Kubernetes convention)."""
    previous = {c.get("type"): c for c in old}
    for cond in new:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        cond["lastTransitionTime"] = before.get("lastTransitionTime", now) if same and before else now
    return new
