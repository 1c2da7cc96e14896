"""Runs a batch job and turns its outcome into an exit code, one log line and a summary."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from datamanager.contract import ENV_RESOURCE, ENV_RUN_ID, ExitCode, RunSummary
from datamanager_workers.shared.errors import WorkerError
from datamanager_workers.shared.settings import termination_log_path
from datamanager_workers.shared.summary import write_summary

log = logging.getLogger("datamanager_workers")


def run_job(job: str, main: Callable[[], Coroutine[Any, Any, RunSummary]], args: argparse.Namespace) -> int:
    """Run ``main`` to completion; ``args`` are the ``add_common_arguments`` flags (summary path, run id,
    resource, each falling back to its environment variable).

    Success writes its summary and returns 0 whatever the results say. A ``WorkerError`` logs exactly one
    line naming the cause and returns its exit code; anything else is a bug: one line with the traceback,
    exit code INTERNAL. A failure still leaves a summary, so the operator can show the reason without
    reading logs."""
    termination_log = termination_log_path(args)
    run_id = args.run_id or os.environ.get(ENV_RUN_ID)
    resource = args.resource or os.environ.get(ENV_RESOURCE)
    started = datetime.now(UTC)
    try:
        summary = asyncio.run(main())
    except WorkerError as exc:
        log.error("%s failed (%s, exit %d): %s", job, exc.reason, exc.exit_code, exc)
        code, reason, message = exc.exit_code, exc.reason, str(exc)
    except Exception as exc:
        log.error("%s failed with an internal error: %s: %s", job, type(exc).__name__, exc, exc_info=True)
        code, reason, message = ExitCode.INTERNAL, "InternalError", f"{type(exc).__name__}: {exc}"
    else:
        write_summary(summary, termination_log)
        return int(ExitCode.OK)
    failure = RunSummary(
        job=job,
        outcome="Failed",
        exit_code=int(code),
        reason=reason,
        message=message,
        run_id=run_id,
        resource=resource,
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    write_summary(failure, termination_log)
    return int(code)
