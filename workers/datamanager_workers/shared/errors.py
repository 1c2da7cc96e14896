"""Typed failures of a worker run; each carries the exit code and condition reason the operator maps."""

from __future__ import annotations

from datamanager.contract import ExitCode


class WorkerError(Exception):
    """A failure the worker understands: its message is the one log line and the summary's message."""

    exit_code: ExitCode = ExitCode.INTERNAL
    reason: str = "InternalError"


class InvalidConfigError(WorkerError):
    """Settings that can never work as given: permanent, never worth a retry."""

    exit_code = ExitCode.INVALID_CONFIG
    reason = "InvalidConfig"


class SourceUnavailableError(WorkerError):
    """MySQL cannot be reached, refuses the credentials or fails mid-run: transient."""

    exit_code = ExitCode.SOURCE_UNAVAILABLE
    reason = "SourceUnavailable"


class SinkUnavailableError(WorkerError):
    """MongoDB cannot be reached, refuses the credentials or fails mid-run: transient."""

    exit_code = ExitCode.SINK_UNAVAILABLE
    reason = "SinkUnavailable"
