"""The periodic resync queues every resource once per period, each at its own moment, never all at once."""

from __future__ import annotations

import asyncio
from collections import Counter

from datamanager_operator.controller import Controller, _phase
from datamanager_operator.leases import LeaseKeeper
from datamanager_operator.membership import Membership
from datamanager_operator.model import Key
from datamanager_operator.settings import OperatorSettings
from datamanager_operator.views import ResourceView
from tests.unit.operator.test_forgetting import resource_body
from tests.unit.operator.test_requests_at_scale import LeaseServer

RESOURCES = 200
PERIOD = 2.0
SLICES = 10


async def resync_for(periods: float) -> list[tuple[float, Key]]:
    server = LeaseServer()
    controller = Controller(OperatorSettings(instance_id="a", namespace="system", resync_seconds=PERIOD))  # type: ignore[arg-type]
    controller.membership = Membership(server, "system", "a", 10, lambda: None)  # type: ignore[arg-type]
    for n in range(RESOURCES):
        view = ResourceView.of("DataAudit", resource_body(f"r{n}", f"uid-{n}", {}))
        controller.caches.resources["DataAudit"].apply(view)
    loop = asyncio.get_running_loop()
    added: list[tuple[float, Key]] = []
    controller.queue.add = lambda key: added.append((loop.time(), key))  # type: ignore[method-assign]
    leases = LeaseKeeper(server, "a", "system", 15)  # type: ignore[arg-type]
    start = loop.time()
    task = asyncio.create_task(controller._resync(leases))
    await asyncio.sleep(periods * PERIOD)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return [(moment - start, key) for moment, key in added]


def test_every_resource_once_per_period_each_at_its_own_moment() -> None:
    added = asyncio.run(resync_for(2.5))
    keys = [key for _, key in added]
    assert len(set(keys[:RESOURCES])) == RESOURCES, "the first period queues every resource once"
    assert keys[RESOURCES : 2 * RESOURCES] == keys[:RESOURCES], "the next one again, in the same order"
    for index, (moment, key) in enumerate(added):
        due = _phase(key) * PERIOD + (index // RESOURCES) * PERIOD
        assert moment >= due - 0.01, f"{key} queued before its moment"  # late only under load, never early
    per_slice = Counter(int(_phase(key) * SLICES) for key in keys[:RESOURCES])
    assert max(per_slice.values()) < 3 * RESOURCES / SLICES, per_slice  # the moments are spread
    first = [moment for moment, _ in added[:RESOURCES]]
    assert max(first) - min(first) > 0.8 * PERIOD, "queued in one burst"
