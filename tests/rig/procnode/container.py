"""One container as a local process inside its pod's network namespace, with its mounts, logs and probes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from .materialize import expand

Obj = dict[str, Any]
TERMINATION_MESSAGE_LIMIT = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Exited:
    code: int
    reason: str
    message: str
    started_at: str
    finished_at: str


@dataclass
class ContainerProcess:
    """Launches and supervises the process of one container; no restart policy here, see the pod."""

    spec: Obj
    pod_dir: Path
    netns: str
    pod_ip: str
    env: dict[str, str]
    volumes: dict[str, Path]
    default_command: list[str]
    hostname: str
    proc: asyncio.subprocess.Process | None = None
    started_at: str = ""
    restarts: int = 0
    ready: bool = False
    killed_by_probe: bool = False
    _probe_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def log_path(self) -> Path:
        return self.pod_dir / "logs" / f"{self.name}.log"

    @property
    def termination_file(self) -> Path:
        return self.pod_dir / "termination" / self.name

    def argv(self) -> list[str]:
        command = [expand(c, self.env) for c in self.spec.get("command") or self.default_command]
        args = [expand(a, self.env) for a in self.spec.get("args") or []]
        if not command:
            raise ValueError(f"container {self.name} has no command and the node has no default entrypoint")
        return [*command, *args]

    def _setup_script(self) -> str:
        """Shell run inside the pod's private mount namespace before exec: volume and message mounts."""
        lines = ["set -e", f"hostname {shlex.quote(self.hostname)}"]
        for mount in self.spec.get("volumeMounts") or []:
            source = self.volumes[mount["name"]] / mount.get("subPath", "")
            target = mount["mountPath"]
            make = (
                f"mkdir -p {shlex.quote(target)}"
                if source.is_dir()
                else (f"mkdir -p {shlex.quote(str(Path(target).parent))} && touch {shlex.quote(target)}")
            )
            lines.append(f"{make} && mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
            if mount.get("readOnly"):
                lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
        message_path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        lines.append(
            f"mkdir -p {shlex.quote(str(Path(message_path).parent))} && touch {shlex.quote(message_path)}"
        )
        lines.append(f"mount --bind {shlex.quote(str(self.termination_file))} {shlex.quote(message_path)}")
        workdir = self.spec.get("workingDir") or str(self.pod_dir / "work")
        lines.append(f"mkdir -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)}")
        lines.append('exec "$@"')
        return "\n".join(lines)

    async def start(self) -> None:
        self.termination_file.parent.mkdir(parents=True, exist_ok=True)
        self.termination_file.write_bytes(b"")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists() and self.restarts:
            self.log_path.replace(self.log_path.with_suffix(".previous.log"))
        log = self.log_path.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                # own network, mount and UTS namespaces: its address, its mounts, its hostname
                "ip",
                "netns",
                "exec",
                self.netns,
                "unshare",
                "--uts",
                "sh",
                "-c",
                self._setup_script(),
                "sh",
                *self.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        finally:
            log.close()
        self.started_at = now()
        self.ready = not self.spec.get("readinessProbe")
        self.killed_by_probe = False

    async def wait(self) -> Exited:
        assert self.proc is not None
        code = await self.proc.wait()
        if code < 0:
            code = 128 - code  # killed by a signal: 128 + signal number, as a container runtime reports
        message = self.termination_file.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
        if not message and code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = self.log_path.read_bytes().splitlines()[-FALLBACK_LOG_LINES:]
            message = b"\n".join(tail)[-FALLBACK_LOG_BYTES:].decode(errors="replace")
        reason = "Completed" if code == 0 else "Error"
        self.ready = False
        return Exited(code, reason, message, self.started_at, now())

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after the grace period, as the kubelet does on pod deletion."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout=max(grace, 0.1))
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.proc.wait()

    def exec_argv(self, command: list[str]) -> list[str]:
        """How an exec probe runs ``command`` where the container runs."""
        return ["ip", "netns", "exec", self.netns, *command]

    # ------------------------------------------------------------ probes

    def start_probes(self, on_change: Callable[[], None]) -> None:
        for kind in ("readinessProbe", "livenessProbe"):
            probe = self.spec.get(kind)
            if probe:
                self._probe_tasks.append(asyncio.create_task(self._probe_loop(kind, probe, on_change)))

    def stop_probes(self) -> None:
        for task in self._probe_tasks:
            task.cancel()
        self._probe_tasks.clear()

    async def _probe_loop(self, kind: str, probe: Obj, on_change: Callable[[], None]) -> None:
        await asyncio.sleep(probe.get("initialDelaySeconds", 0))
        period = probe.get("periodSeconds", 10)
        success_needed = probe.get("successThreshold", 1)
        failure_needed = probe.get("failureThreshold", 3)
        successes = failures = 0
        while self.proc is not None and self.proc.returncode is None:
            ok = await self._probe_once(probe)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if kind == "readinessProbe":
                ready = self.ready
                if ok and successes >= success_needed:
                    ready = True
                elif not ok and failures >= failure_needed:
                    ready = False
                if ready != self.ready:
                    self.ready = ready
                    on_change()
            elif not ok and failures >= failure_needed:
                self.killed_by_probe = True
                await self.stop(float(self.spec.get("terminationGracePeriodSeconds", 5)))
                return
            await asyncio.sleep(period)

    async def _probe_once(self, probe: Obj) -> bool:
        timeout = probe.get("timeoutSeconds", 1)
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                port = self._port(get["port"])
                host = get.get("host") or self.pod_ip
                url = f"{get.get('scheme', 'HTTP').lower()}://{host}:{port}{get.get('path', '/')}"
                client_timeout = aiohttp.ClientTimeout(total=timeout)
                async with (
                    aiohttp.ClientSession(timeout=client_timeout) as session,
                    session.get(url, ssl=False) as r,
                ):
                    return 200 <= r.status < 400
            if "tcpSocket" in probe:
                port = self._port(probe["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(asyncio.open_connection(self.pod_ip, port), timeout)
                writer.close()
                return True
            if "exec" in probe:
                proc = await asyncio.create_subprocess_exec(
                    *self.exec_argv(probe["exec"]["command"]),
                    env=self.env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                try:
                    return await asyncio.wait_for(proc.wait(), timeout) == 0
                except TimeoutError:
                    proc.kill()
                    return False
        except (OSError, TimeoutError, aiohttp.ClientError):
            return False
        return False

    def _port(self, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for declared in self.spec.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise ValueError(f"container {self.name} has no port named {port!r}")


def backoff(restarts: int, base: float, cap: float) -> float:
    """Crash-loop delay before restart number ``restarts`` (kubelet: 10 s doubling to 5 min)."""
    return float(min(cap, base * 2 ** max(restarts - 1, 0)))
