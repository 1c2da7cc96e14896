"""What a run came to, from the Job's conditions and its pods' termination messages (worker summaries)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from datamanager.contract import ExitCode, RunSummary

Body = dict[str, Any]
# pods waiting this way will not start by themselves; after a grace period the run fails with the reason
STUCK_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
EXIT_REASONS: dict[int, str] = {
    ExitCode.INVALID_CONFIG: "InvalidConfig",
    ExitCode.SOURCE_UNAVAILABLE: "SourceUnavailable",
    ExitCode.SINK_UNAVAILABLE: "SinkUnavailable",
    ExitCode.INTERNAL: "WorkerError",
}


@dataclass
class Outcome:
    finished: bool
    succeeded: bool = False
    reason: str = ""
    message: str = ""
    completion_time: str | None = None
    summaries: list[RunSummary] = field(default_factory=list)


def job_finished(job: Body) -> tuple[bool, bool, Body | None]:
    """(finished, succeeded, the deciding condition)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return True, condition["type"] == "Complete", condition
    return False, False, None


def summary_of(pod: Body) -> RunSummary | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        message = terminated.get("message")
        if message:
            try:
                return RunSummary.model_validate(json.loads(message))
            except (ValueError, ValidationError):
                return None
    return None


def _exit_code(pod: Body) -> int | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return int(terminated.get("exitCode", 0))
    return None


def _last_words(pod: Body) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        return str(terminated.get("message") or "").strip()[-500:]
    return ""


def outcome_of(job: Body, pods: list[Body]) -> Outcome:
    finished, succeeded, condition = job_finished(job)
    if not finished or condition is None:
        return Outcome(finished=False)
    completion = (job.get("status") or {}).get("completionTime") or condition.get("lastTransitionTime")
    if succeeded:
        summaries = _per_index([p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"])
        return Outcome(True, True, "RunSucceeded", "the run completed", completion, summaries)
    failed = sorted(
        (p for p in pods if (p.get("status") or {}).get("phase") == "Failed"),
        key=lambda p: p["metadata"].get("creationTimestamp", ""),
    )
    job_reason = condition.get("reason") or "JobFailed"
    if job_reason == "DeadlineExceeded":
        return Outcome(True, False, "DeadlineExceeded", str(condition.get("message", "")), completion)
    if not failed:
        return Outcome(True, False, job_reason, str(condition.get("message", "")), completion)
    last = failed[-1]
    summary = summary_of(last)
    code = _exit_code(last)
    reason = summary.reason if summary else EXIT_REASONS.get(code or 0, "WorkerError")
    detail = summary.message if summary else _last_words(last)
    if job_reason == "BackoffLimitExceeded":
        message = f"retries exhausted after {len(failed)} attempt(s); last: {detail}"
    else:
        message = detail or str(condition.get("message", ""))
    return Outcome(True, False, reason, message, completion)


def _per_index(pods: list[Body]) -> list[RunSummary]:
    """One summary per completion index (an Indexed Job may have retried an index)."""
    by_index: dict[str, RunSummary] = {}
    for pod in pods:
        index = pod["metadata"].get("annotations", {}).get("batch.kubernetes.io/job-completion-index", "0")
        summary = summary_of(pod)
        if summary is not None:
            by_index[index] = summary
    return [by_index[i] for i in sorted(by_index, key=int)]


def stuck_reason(pods: list[Body], now: datetime, grace_seconds: int) -> tuple[str, str] | None:
    """A pod that cannot start by itself (image, configuration, scheduling) for longer than the grace."""
    for pod in pods:
        status = pod.get("status") or {}
        created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        if (now - created).total_seconds() < grace_seconds:
            continue
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                return waiting["reason"], str(waiting.get("message", ""))
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                return "Unschedulable", str(condition.get("message", ""))
    return None


def now_utc() -> datetime:
    return datetime.now(UTC)
