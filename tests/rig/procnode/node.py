"""The Node object: registration, status heartbeat, the node Lease, and the pod watch that drives workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime
from typing import Any, cast

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Node, Pod

from .pod import NodeContext, PodWorker

Obj = dict[str, Any]
log = logging.getLogger("procnode.node")
LEASE_SECONDS = 40
RENEW_EVERY = 10.0


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ProcessNode:
    def __init__(self, name: str, ctx: NodeContext, capacity: dict[str, str], kubelet_port: int) -> None:
        self.name = name
        self.ctx = ctx
        self.capacity = capacity
        self.kubelet_port = kubelet_port
        self.workers: dict[str, PodWorker] = {}
        # pods whose worker ended: a late event with an old status must never start them again
        self.finished: set[str] = set()
        self._cleanups: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> AsyncClient:
        return self.ctx.client

    def node_status(self) -> Obj:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def cond(kind: str, status: str, reason: str, message: str) -> Obj:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }

        return {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": [
                cond("Ready", "True", "KubeletReady", "process node is posting ready status"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "enough memory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "enough disk"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "enough PIDs"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.ctx.node_ip},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "osImage": "process node (pods are local processes)",
                "containerRuntimeVersion": "procnode://1",
                "kubeletVersion": "v0.0.0-procnode",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    async def register(self) -> None:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.datamanager.io/process-node": "true",
        }
        body = cast(
            Node,
            Node.from_dict(
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": labels}}
            ),
        )  # lightkube types from_dict as returning its mixin, not the resource
        with contextlib.suppress(ApiError):
            await self.client.create(body)
        await self.client.patch(Node.Status, self.name, {"status": self.node_status()})

    async def heartbeat(self) -> None:
        """Renews the node Lease and the Ready condition, so the node lifecycle controller keeps the node."""
        while True:
            try:
                await self._renew_lease()
                await self.client.patch(Node.Status, self.name, {"status": self.node_status()})
            except ApiError as exc:
                log.warning("heartbeat failed: %s", exc.status.message)
            except httpx2.TransportError as exc:  # the API server is restarting: a kubelet keeps trying
                log.warning("heartbeat failed: %r", exc)
            await asyncio.sleep(RENEW_EVERY)

    async def _renew_lease(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": micro_now()}
        try:
            await self.client.patch(Lease, self.name, {"spec": spec}, namespace="kube-node-lease")
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            node = await self.client.get(Node, self.name)
            assert node.metadata is not None
            lease = cast(
                Lease,
                Lease.from_dict(
                    {
                        "metadata": {
                            "name": self.name,
                            "namespace": "kube-node-lease",
                            "ownerReferences": [
                                {
                                    "apiVersion": "v1",
                                    "kind": "Node",
                                    "name": self.name,
                                    "uid": node.metadata.uid,
                                }
                            ],
                        },
                        "spec": spec,
                    }
                ),
            )
            await self.client.create(lease)

    async def watch_pods(self) -> None:
        """List then watch the pods bound here; each new pod gets a worker, each change reaches it."""
        while True:
            try:
                async for event, pod in self.client.watch(
                    Pod, namespace="*", fields={"spec.nodeName": self.name}
                ):
                    self.dispatch(event, pod.to_dict())
            except ApiError as exc:
                log.warning("pod watch ended: %s; re-listing", exc.status.message)
            except Exception as exc:  # a dropped connection must not end the node
                log.warning("pod watch ended: %r; re-listing", exc)
            await asyncio.sleep(1)

    def dispatch(self, event: str, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if event == "DELETED":
            if worker:
                worker.gone()
            return
        if worker:
            worker.update(pod)
            return
        if uid in self.finished or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            if pod["metadata"].get("deletionTimestamp"):
                # a finished pod from before a node restart: only its removal is left to do
                worker = PodWorker(self.ctx, pod)
                worker.deleting.set()
                task = asyncio.create_task(worker.finalize_deletion())
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)
            return
        worker = PodWorker(self.ctx, pod)
        worker.update(pod)
        self.workers[uid] = worker
        worker.task = asyncio.create_task(worker.run())
        worker.task.add_done_callback(lambda _: self._finished(uid))

    def _finished(self, uid: str) -> None:
        self.workers.pop(uid, None)
        self.finished.add(uid)

    async def shutdown(self) -> None:
        """Stops every pod's processes (the rig is going away) without touching the API objects."""
        for worker in list(self.workers.values()):
            for container in worker.containers.values():
                container.stop_probes()
        await asyncio.gather(*(c.stop(5) for w in self.workers.values() for c in w.containers.values()))
        for worker in list(self.workers.values()):
            if worker.net:
                await self.ctx.network.delete(worker.net)
