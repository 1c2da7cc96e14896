"""One container of a pod run from its image by runc (container mode); see oci.py for what it enforces."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from signal import Signals

from .container import ContainerProcess, Exited, now
from .materialize import expand
from .oci import (
    Image,
    Mount,
    Security,
    argv,
    image_env,
    memory_limit,
    mount_rootfs,
    runtime_spec,
    unmount_rootfs,
)

# what containerd reports when the runtime could not start the process (bad mount, missing executable, ...)
START_ERROR_CODE = 128


@dataclass
class RuncContainer(ContainerProcess):
    """Supervised like a process (the pod applies restarts); started, signalled and probed through runc."""

    image: Image | None = None
    sec: Security | None = None
    runc_root: Path = Path("/run/procnode-runc")
    cgroup_parent: str = "/procnode"
    extra_mounts: list[Mount] = field(default_factory=list)
    _signals: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def bundle(self) -> Path:
        return self.pod_dir / "containers" / self.name

    @property
    def container_id(self) -> str:
        return f"{self.pod_dir.name.rsplit('_', 1)[-1]}-{self.name}"

    def _runc(self, *args: str) -> list[str]:
        return ["runc", "--root", str(self.runc_root), *args]

    def argv(self) -> list[str]:
        assert self.image is not None
        command = [expand(part, self.env) for part in argv(self.spec, self.image)]
        if not command:
            raise ValueError(f"container {self.name}: neither the pod nor the image names a command")
        return command

    def _mounts(self) -> list[Mount]:
        mounts = list(self.extra_mounts)
        for mount in self.spec.get("volumeMounts") or []:
            source = self.volumes[mount["name"]] / mount.get("subPath", "")
            mounts.append(Mount(source, mount["mountPath"], bool(mount.get("readOnly"))))
        message_path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        mounts.append(Mount(self.termination_file, message_path, False))
        return mounts

    async def start(self) -> None:
        assert self.image is not None
        assert self.sec is not None
        self.termination_file.parent.mkdir(parents=True, exist_ok=True)
        self.termination_file.write_bytes(b"")
        self.termination_file.chmod(0o666)  # the kubelet's mode: any container user may write its message
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists() and self.restarts:
            self.log_path.replace(self.log_path.with_suffix(".previous.log"))
        await self._delete()
        rootfs = await mount_rootfs(self.image, self.bundle)
        env = {**image_env(self.image), **self.env}
        env.setdefault("HOME", "/")
        spec = runtime_spec(
            args=self.argv(),
            env=env,
            cwd=self.spec.get("workingDir") or self.image.config.get("WorkingDir") or "/",
            rootfs=rootfs,
            hostname=self.hostname,
            netns=self.netns,
            sec=self.sec,
            mounts=self._mounts(),
            memory_limit=memory_limit(self.spec),
            cgroup=f"{self.cgroup_parent}/{self.container_id}",
        )
        (self.bundle / "config.json").write_text(json.dumps(spec, indent=1))
        (self.bundle / "pid").unlink(missing_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self._runc("run", "--bundle", str(self.bundle), "--pid-file", str(self.bundle / "pid")),
                self.container_id,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.started_at = now()
        self.ready = not self.spec.get("readinessProbe")
        self.killed_by_probe = False

    async def wait(self) -> Exited:
        exited = await super().wait()
        started = (self.bundle / "pid").exists()
        await unmount_rootfs(self.bundle)
        if not started:
            # runc could not start the process: its own error is the last line of the log
            lines = self.log_path.read_bytes().decode(errors="replace").strip().splitlines()
            message = lines[-1] if lines else "the container runtime failed to start the container"
            return Exited(START_ERROR_CODE, "StartError", message, exited.started_at, exited.finished_at)
        return exited

    def signal(self, sig: Signals) -> None:
        """To the container's init through runc (SIGKILL included, which runc itself could not forward)."""
        if self.proc is not None and self.proc.returncode is None:
            # runc kill returns at once; the caller waits for the exit (the task is kept until it is done)
            task = asyncio.get_running_loop().create_task(self._kill(sig))
            self._signals.add(task)
            task.add_done_callback(self._signals.discard)

    async def _kill(self, sig: Signals) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._runc("kill", self.container_id, str(int(sig))),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    async def stop(self, grace: float) -> None:
        await super().stop(grace)
        await self._delete()
        await unmount_rootfs(self.bundle)

    async def _delete(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._runc("delete", "--force", self.container_id),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    def exec_argv(self, command: list[str]) -> list[str]:
        return self._runc("exec", self.container_id, *command)
