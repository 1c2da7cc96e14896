"""The life of one pod on the process node: network, config, containers, restarts, status, deletion."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from .container import ContainerProcess, Exited, backoff, now
from .materialize import ConfigError, Materializer
from .network import NodeNetwork, PodNetwork
from .oci import Image, ImagePullError, ImageStore, Mount, Security, security
from .runc import RuncContainer

Obj = dict[str, Any]
log = logging.getLogger("procnode.pod")
# Images under this registry never pull: lets tests see ErrImagePull/ImagePullBackOff for real.
UNPULLABLE_REGISTRY = "unpullable.invalid/"
# slowpull.invalid/<seconds>/<image>: the pull takes that long (ContainerCreating), then <image> runs (any
# name in process mode), so tests can hold a run active for as long as they need
SLOW_REGISTRY = "slowpull.invalid/"
REPORT_ATTEMPTS = 120  # a status update is retried for two minutes while the API server is unreachable


@dataclass
class NodeContext:
    client: AsyncClient
    network: NodeNetwork
    root: Path
    node_ip: str
    allocatable: dict[str, str]
    base_env: dict[str, str]
    default_command: list[str]
    restart_base: float
    restart_cap: float
    # container mode: images from this store, containers through runc (None: containers run as processes)
    images: ImageStore | None = None
    runc_root: Path = Path("/run/procnode-runc")
    cgroup_parent: str = "/procnode"


class PodWorker:
    def __init__(self, ctx: NodeContext, pod: Obj) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.dir = ctx.root / f"{self.namespace}_{self.name}_{self.uid}"
        self.restart_policy: str = pod["spec"].get("restartPolicy", "Always")
        self.net: PodNetwork | None = None
        self.containers: dict[str, ContainerProcess] = {}
        self.states: dict[str, Obj] = {
            c["name"]: {"waiting": {"reason": "ContainerCreating"}} for c in pod["spec"]["containers"]
        }
        self.last_states: dict[str, Obj] = {}
        self.phase = "Pending"
        self.start_time = now()
        self.deleting = asyncio.Event()
        self.changed = asyncio.Event()
        self._reported: Obj | None = None
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ events from the watch

    def update(self, pod: Obj) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    def gone(self) -> None:
        self.deleting.set()

    # ------------------------------------------------------------ main flow

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:
            log.exception("pod %s/%s: node failure", self.namespace, self.name)
            self.phase = "Failed"
            await self.report()
        finally:
            for container in self.containers.values():
                container.stop_probes()
                await container.stop(0)
            if self.net:
                await self.ctx.network.delete(self.net)
            shutil.rmtree(self.dir / "volumes", ignore_errors=True)
            if self.deleting.is_set():
                await self._report_terminal()
                await self.finalize_deletion()

    async def _run(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        await self.report()
        if self.deleting.is_set():
            return
        images = await self._pull()
        if images is None:
            return
        self.net = await self.ctx.network.create(self.uid)
        envs = await self._materialize(images)
        if envs is None:
            return
        for spec in self.pod["spec"]["containers"]:
            common = {
                "spec": spec,
                "pod_dir": self.dir,
                "netns": self.net.namespace,
                "pod_ip": self.net.address,
                "env": envs[spec["name"]],
                "volumes": self._volume_paths,
                "default_command": self.ctx.default_command,
                "hostname": self.name,
            }
            if self.ctx.images is None:
                self.containers[spec["name"]] = ContainerProcess(**common)
            else:
                self.containers[spec["name"]] = RuncContainer(
                    **common,
                    image=images[spec["name"]],
                    sec=self._security[spec["name"]],
                    runc_root=self.ctx.runc_root,
                    cgroup_parent=self.ctx.cgroup_parent,
                    extra_mounts=self._pod_files(),
                )
        self.phase = "Running"
        supervisors = [asyncio.create_task(self._supervise(c)) for c in self.containers.values()]
        deletion = asyncio.create_task(self.deleting.wait())
        reporter = asyncio.create_task(self._report_on_change())
        waiters: list[asyncio.Future[Any]] = [deletion, asyncio.gather(*supervisors)]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if self.deleting.is_set():
            grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
            await asyncio.gather(*(c.stop(float(grace)) for c in self.containers.values()))
            await asyncio.gather(*supervisors, return_exceptions=True)
        deletion.cancel()
        codes = [s["terminated"]["exitCode"] for s in self.states.values() if "terminated" in s]
        self.phase = "Succeeded" if len(codes) == len(self.states) and not any(codes) else "Failed"
        reporter.cancel()
        await self.report()

    async def _pull(self) -> dict[str, Image | None] | None:
        """Each container's image, retried with backoff like a kubelet's pulls while the node lacks one; the
        container waits in ImagePullBackOff meanwhile, the last error in the message (the kubelet shows
        ErrImagePull for the moment of each failed attempt: not reported here, so that what an observer sees
        does not depend on when it looks). Process mode has no images, except that those under
        unpullable.invalid/ never pull, and those under slowpull.invalid/<seconds>/ take that long."""
        slow = max(
            (_pull_seconds(str(s.get("image", ""))) for s in self.pod["spec"]["containers"]), default=0.0
        )
        if slow:
            for spec in self.pod["spec"]["containers"]:
                self.states[spec["name"]] = {"waiting": {"reason": "ContainerCreating"}}
            await self.report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deleting.wait(), slow)
        delay = 1.0
        while not self.deleting.is_set():
            images: dict[str, Image | None] = {}
            try:
                for spec in self.pod["spec"]["containers"]:
                    reference = _pulled(str(spec.get("image", "")))
                    if reference.startswith(UNPULLABLE_REGISTRY):
                        raise ImagePullError(f'failed to pull image "{reference}": no such registry')
                    images[spec["name"]] = await self.ctx.images.get(reference) if self.ctx.images else None
                return images
            except ImagePullError as exc:
                failed = next(s for s in self.pod["spec"]["containers"] if s["name"] not in images)
                self.states[failed["name"]] = {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{failed.get("image", "")}": ErrImagePull: {exc}',
                    }
                }
                await self.report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deleting.wait(), delay)
            delay = min(delay * 2, 10.0)
        return None

    def _pod_files(self) -> list[Mount]:
        """/etc/hosts, /etc/hostname and /etc/resolv.conf, which the kubelet writes for every container."""
        assert self.net is not None
        etc = self.dir / "etc"
        if not etc.exists():
            etc.mkdir(parents=True)
            (etc / "hosts").write_text(
                "# Kubernetes-managed hosts file (procnode).\n127.0.0.1\tlocalhost\n::1\tlocalhost\n"
                f"{self.net.address}\t{self.name}\n"
            )
            (etc / "hostname").write_text(f"{self.name}\n")
            resolv = Path("/etc/resolv.conf")
            (etc / "resolv.conf").write_text(resolv.read_text() if resolv.exists() else "")
        return [Mount(etc / name, f"/etc/{name}", False) for name in ("hosts", "hostname", "resolv.conf")]

    async def _materialize(self, images: dict[str, Image | None]) -> dict[str, dict[str, str]] | None:
        """Resolves env, volumes and (container mode) the security context, retrying like a kubelet while a
        Secret or ConfigMap is missing or a container would break its non-root policy."""
        assert self.net is not None
        delay = 1.0
        self._security: dict[str, Security] = {}
        while not self.deleting.is_set():
            resolver = Materializer(self.ctx.client, self.pod, self.ctx.allocatable)
            resolver.pod_ip, resolver.host_ip = self.net.address, self.ctx.node_ip
            try:
                self._volume_paths = await resolver.volumes(self.dir / "volumes")
                envs = {}
                for spec in self.pod["spec"]["containers"]:
                    env = {**self.ctx.base_env, "HOSTNAME": self.name}
                    env.update(await resolver.environment(spec))
                    envs[spec["name"]] = env
                    image = images[spec["name"]]
                    if image is not None:
                        self._security[spec["name"]] = security(self.pod, spec, image)
                if self.ctx.images is not None:
                    own_volumes(self.pod, self._volume_paths)
                return envs
            except ConfigError as exc:
                for state in self.states.values():
                    state.clear()
                    state["waiting"] = {"reason": exc.reason, "message": str(exc)}
                await self.report()
            except (httpx2.TransportError, ApiError) as exc:
                # the API server unreachable or failing (a restart) while the pod's Secrets, ConfigMaps or
                # token are read: a kubelet keeps the pod ContainerCreating and tries again, never fails it
                code = exc.status.code if isinstance(exc, ApiError) else None
                if code is not None and code < 500 and code != 429:
                    raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deleting.wait(), delay)
            delay = min(delay * 2, 10.0)
        return None

    async def _supervise(self, container: ContainerProcess) -> None:
        """Runs a container until it is done for good under the pod's restart policy."""
        while True:
            try:
                await container.start()
            except (OSError, ValueError) as exc:
                self.states[container.name] = {
                    "waiting": {"reason": "RunContainerError", "message": str(exc)}
                }
                self.changed.set()
                if self.restart_policy == "Never":
                    self.states[container.name] = {
                        "terminated": {
                            "exitCode": 128,
                            "reason": "StartError",
                            "message": str(exc),
                            "startedAt": now(),
                            "finishedAt": now(),
                        }
                    }
                    return
                await asyncio.sleep(
                    backoff(container.restarts + 1, self.ctx.restart_base, self.ctx.restart_cap)
                )
                continue
            self.states[container.name] = {"running": {"startedAt": container.started_at}}
            container.start_probes(self.changed.set)
            self.changed.set()
            exited = await container.wait()
            container.stop_probes()
            self.states[container.name] = {"terminated": terminated(exited)}
            self.changed.set()
            restart = not self.deleting.is_set() and (
                self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and exited.code != 0)
            )
            if not restart:
                return
            self.last_states[container.name] = {"terminated": terminated(exited)}
            container.restarts += 1
            delay = backoff(container.restarts, self.ctx.restart_base, self.ctx.restart_cap)
            self.states[container.name] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:.0f}s restarting failed container={container.name} "
                    f"pod={self.name}",
                }
            }
            self.changed.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deleting.wait(), delay)
            if self.deleting.is_set():
                self.states[container.name] = {"terminated": terminated(exited)}
                return

    async def _report_on_change(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            await self.report()

    # ------------------------------------------------------------ status

    def status(self) -> Obj:
        ready = (
            self.phase == "Running"
            and all(c.ready for c in self.containers.values())
            and bool(self.containers)
        )
        done = self.phase in ("Succeeded", "Failed")
        started = bool(self.containers)
        conditions = [
            condition("PodReadyToStartContainers", self.net is not None),
            condition("Initialized", True),
            condition(
                "ContainersReady", ready, "PodCompleted" if done else ("" if ready else "ContainersNotReady")
            ),
            condition("Ready", ready, "PodCompleted" if done else ("" if ready else "ContainersNotReady")),
        ]
        statuses = []
        for spec in self.pod["spec"]["containers"]:
            name = spec["name"]
            container = self.containers.get(name)
            state = self.states[name]
            statuses.append(
                {
                    "name": name,
                    "image": spec.get("image", ""),
                    "imageID": "",
                    "containerID": f"procnode://{self.uid}/{name}" if started else None,
                    "ready": bool(container and container.ready and "running" in state),
                    "started": "running" in state,
                    "restartCount": container.restarts if container else 0,
                    "state": state,
                    "lastState": self.last_states.get(name, {}),
                }
            )
        status: Obj = {
            "phase": self.phase,
            "conditions": conditions,
            "containerStatuses": statuses,
            "hostIP": self.ctx.node_ip,
            "hostIPs": [{"ip": self.ctx.node_ip}],
            "startTime": self.start_time,
        }
        if self.net:
            status["podIP"] = self.net.address
            status["podIPs"] = [{"ip": self.net.address}]
        return status

    async def report(self) -> None:
        status = self.status()
        comparable = {
            **status,
            "conditions": [{**c, "lastTransitionTime": None} for c in status["conditions"]],
        }
        if comparable == self._reported:
            return
        try:
            for attempt in range(REPORT_ATTEMPTS):  # through an API server restart, as a kubelet does
                try:
                    await self.ctx.client.patch(
                        Pod.Status, self.name, {"status": status}, namespace=self.namespace
                    )
                    break
                except httpx2.TransportError:
                    if attempt == REPORT_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(1)
            self._reported = comparable
        except ApiError as exc:
            if exc.status.code != 404:
                log.warning(
                    "pod %s/%s: status update failed: %s", self.namespace, self.name, exc.status.message
                )

    async def _report_terminal(self) -> None:
        """A pod deleted before it finished ends Failed, as a kubelet reports it; the Job controller waits
        for a terminal phase before it removes its tracking finalizer."""
        if self.phase in ("Succeeded", "Failed"):
            return
        for state in self.states.values():
            if "terminated" not in state:
                state.clear()
                state["terminated"] = {
                    "exitCode": 137,
                    "reason": "ContainerStatusUnknown",
                    "startedAt": self.start_time,
                    "finishedAt": now(),
                    "message": "The container was stopped when the pod was deleted",
                }
        self.phase = "Failed"
        await self.report()

    async def finalize_deletion(self) -> None:
        """After the containers stopped: remove the pod object for good (what the kubelet does last)."""
        with contextlib.suppress(ApiError):
            await self.ctx.client.delete(Pod, self.name, namespace=self.namespace, grace_period=0)
        if os.environ.get("PROCNODE_KEEP_POD_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def own_volumes(pod: Obj, paths: dict[str, Path]) -> None:
    """Volume ownership as the kubelet sets it for a pod with ``fsGroup``: the group owns every file and may
    read it (an emptyDir is group-writable and setgid); an emptyDir is writable by anyone without it."""
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    kinds = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    for name, root in paths.items():
        empty_dir = "emptyDir" in kinds.get(name, {})
        if fs_group is None:
            if empty_dir:
                root.chmod(0o777)
            continue
        for path in [root, *root.rglob("*")]:
            os.chown(path, -1, int(fs_group), follow_symlinks=False)
            mode = path.stat().st_mode
            if path.is_dir():
                path.chmod((mode | 0o2070 if empty_dir else mode | 0o2050) & 0o7777)
            else:
                path.chmod((mode | (0o060 if empty_dir else 0o040)) & 0o7777)


def condition(kind: str, status: bool, reason: str = "") -> Obj:
    result: Obj = {"type": kind, "status": "True" if status else "False", "lastTransitionTime": now()}
    if reason:
        result["reason"] = reason
    return result


def terminated(exited: Exited) -> Obj:
    result: Obj = {
        "exitCode": exited.code,
        "reason": exited.reason,
        "startedAt": exited.started_at,
        "finishedAt": exited.finished_at,
    }
    if exited.message:
        result["message"] = exited.message
    return result


def _pull_seconds(image: str) -> float:
    if not image.startswith(SLOW_REGISTRY):
        return 0.0
    seconds = image.removeprefix(SLOW_REGISTRY).split("/", 1)[0]
    return float(seconds) if seconds.replace(".", "", 1).isdigit() else 0.0


def _pulled(image: str) -> str:
    """The image a slow pull ends with: what follows slowpull.invalid/<seconds>/."""
    if not image.startswith(SLOW_REGISTRY):
        return image
    return image.removeprefix(SLOW_REGISTRY).partition("/")[2]
