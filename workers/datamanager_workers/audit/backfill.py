"""Optional backfill requests: one NATS message per large gap, so the extractor can fill it.

Best effort: the audit's results do not depend on them, so a NATS failure is logged once and counted in the
summary instead of failing the run. Only listed gaps (the first ``maxFindings`` per dataset) are requested,
and flat gaps (probably periods without trades) are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from datamanager_workers.audit.findings import DatasetAudit
from datamanager_workers.shared.urls import nats_login, shown

log = logging.getLogger(__name__)


def backfill_requests(
    audits: Sequence[DatasetAudit], min_missing: int, run_id: str, resource: str | None
) -> list[dict[str, Any]]:
    return [
        {
            "symbol": audit.symbol,
            "interval": audit.interval.value,
            "start": gap.first_missing.isoformat().replace("+00:00", "Z"),
            "end": gap.last_missing.isoformat().replace("+00:00", "Z"),
            "missing": gap.missing,
            "run_id": run_id,
            "resource": resource,
        }
        for audit in audits
        for gap in audit.gaps
        if gap.missing >= min_missing and not gap.flat
    ]


async def publish(url: str, subject: str, requests: Sequence[dict[str, Any]], wait: float) -> int:
    """Publish ``requests`` as JSON; returns how many were published (0 when NATS is unavailable)."""
    if not requests:
        return 0
    import nats

    try:
        login = nats_login([url])
        client = await nats.connect(
            login.servers,
            user=login.user,
            password=login.password,
            token=login.token,
            connect_timeout=wait,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
    except Exception as exc:  # nats-py raises plain OSError, TimeoutError or its own errors: all mean "down"
        log.warning(
            "backfill requests not sent: NATS at %s is unavailable: %s", shown(url), exc or type(exc).__name__
        )
        return 0
    try:
        for request in requests:
            await client.publish(subject, json.dumps(request).encode())
        await client.flush(timeout=int(max(1, wait)))
    except Exception as exc:
        log.warning(
            "backfill requests not sent: publishing to %s failed: %s", subject, exc or type(exc).__name__
        )
        return 0
    finally:
        await client.close()
    return len(requests)
