"""What a run came to: from its Job's deciding condition and its pods' termination messages (the workers'
summaries), or why its pods cannot start.

Nothing a worker prints reaches status: only a valid summary (the JSON the worker writes to its
termination-message file) is read; a worker that died without one is reported by its exit code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from datamanager.contract import SUMMARY_MAX_BYTES, ExitCode, RunSummary

from .views import JobView, PodView

# Waiting reasons a pod does not recover from by itself; after a grace period the run fails with the reason.
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
MESSAGE_LIMIT = 1000  # status messages stay small


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    reason: str
    message: str
    completion_time: str | None = None
    summaries: tuple[RunSummary, ...] = ()  # one per shard that left a readable summary

    @property
    def outcome(self) -> str:
        return "Succeeded" if self.succeeded else "Failed"


def summary_of(pod: PodView) -> RunSummary | None:
    """The worker's summary, or None when the termination message is missing, oversized or not one."""
    if not pod.summary or len(pod.summary.encode()) > SUMMARY_MAX_BYTES:
        return None
    try:
        return RunSummary.model_validate(json.loads(pod.summary))
    except (ValueError, ValidationError):
        return None


def _exit_reason(code: int | None) -> str:
    return EXIT_REASONS.get(code, "WorkerError") if code is not None else "WorkerError"


def finished(job: JobView, pods: Sequence[PodView]) -> Outcome:
    """The outcome of a run whose Job has finished (``job.finished``)."""
    if job.succeeded:
        return Outcome(True, "RunSucceeded", "the run completed", job.completion_time, _per_index(pods))
    if job.reason == "DeadlineExceeded":
        return Outcome(False, "DeadlineExceeded", job.message, job.completion_time)
    failed = sorted((p for p in pods if p.phase == "Failed"), key=lambda p: (p.created, p.name))
    if not failed:
        return Outcome(False, job.reason or "JobFailed", job.message, job.completion_time)
    last = failed[-1]
    summary = summary_of(last)
    if summary is not None:
        reason, detail = summary.reason, summary.message
    else:
        reason = _exit_reason(last.exit_code)
        detail = f"the worker exited with code {last.exit_code} and left no summary"
    if job.reason == "BackoffLimitExceeded":
        detail = f"retries exhausted after {len(failed)} attempt(s); last: {detail}"
    return Outcome(False, reason, detail[:MESSAGE_LIMIT], job.completion_time)


def _per_index(pods: Sequence[PodView]) -> tuple[RunSummary, ...]:
    """One summary per completion index: an Indexed Job may have retried an index; the newest pod counts."""
    by_index: dict[int, RunSummary] = {}
    for pod in sorted((p for p in pods if p.phase == "Succeeded"), key=lambda p: (p.created, p.name)):
        summary = summary_of(pod)
        if summary is not None:
            by_index[pod.index] = summary
    return tuple(by_index[i] for i in sorted(by_index))


def stuck(
    pods: Sequence[PodView], now: datetime, stuck_seconds: int, unschedulable_seconds: int
) -> tuple[str, str] | None:
    """(reason, message) of a pod that cannot start by itself and has waited past its grace period."""
    for pod in pods:
        waited = (now - pod.created).total_seconds()
        if pod.waiting_reason in STUCK_REASONS and waited >= stuck_seconds:
            return pod.waiting_reason, f"a worker pod could not start: {pod.waiting_message}"[:MESSAGE_LIMIT]
        if pod.unschedulable is not None and waited >= unschedulable_seconds:
            return "Unschedulable", f"a worker pod could not be scheduled: {pod.unschedulable}"[
                :MESSAGE_LIMIT
            ]
    return None


def stuck_deadline(
    pods: Sequence[PodView], stuck_seconds: int, unschedulable_seconds: int
) -> datetime | None:
    """When the earliest waiting pod would count as stuck: the time to look again without an event."""
    moments = [p.created.timestamp() + stuck_seconds for p in pods if p.waiting_reason in STUCK_REASONS] + [
        p.created.timestamp() + unschedulable_seconds for p in pods if p.unschedulable is not None
    ]
    if not moments:
        return None
    return datetime.fromtimestamp(min(moments), tz=pods[0].created.tzinfo)
