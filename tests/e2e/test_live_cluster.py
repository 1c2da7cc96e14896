"""The operator's API facade (LiveCluster) against the real API server, where it builds requests itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig

from datamanager_operator.cluster import ConflictError, LiveCluster
from datamanager_operator.model import Body


def lease(name: str, namespace: str, holder: str) -> Body:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }


async def deletes_only_at_the_version_it_wrote(kubeconfig_path: Path, namespace: str) -> None:
    client = AsyncClient(KubeConfig.from_file(kubeconfig_path), field_manager="tests")
    cluster = LiveCluster(client, qps=50, burst=100, instance="tests")
    try:
        written = await cluster.create_lease(lease("run", namespace, "a"))
        taken = await cluster.replace_lease({**written, "spec": {**written["spec"], "holderIdentity": "b"}})
        with pytest.raises(ConflictError):  # "a" wrote the older version: not a's Lease to delete any more
            await cluster.delete_lease(namespace, "run", written["metadata"]["resourceVersion"])
        kept = await cluster.get_lease(namespace, "run")
        assert kept is not None
        assert kept["spec"]["holderIdentity"] == "b"
        await cluster.delete_lease(namespace, "run", taken["metadata"]["resourceVersion"])
        assert await cluster.get_lease(namespace, "run") is None
        await cluster.delete_lease(namespace, "run", taken["metadata"]["resourceVersion"])  # gone: no error
        await cluster.create_lease(lease("plain", namespace, "a"))
        await cluster.delete_lease(namespace, "plain")  # no precondition
        assert await cluster.get_lease(namespace, "plain") is None
    finally:
        await client.close()


def test_a_lease_is_deleted_only_at_the_version_its_deleter_last_wrote(
    kubeconfig_path: Path, namespace: str
) -> None:
    asyncio.run(deletes_only_at_the_version_it_wrote(kubeconfig_path, namespace))
