"""Container mode: each container runs from its image through runc, confined by the pod's security context.

What a kubelet with containerd gives a container, built here as an OCI runtime spec: the image's root
filesystem (its layers from Podman's storage as overlay lower layers, a fresh writable layer per start,
read-only when ``readOnlyRootFilesystem``), the image's entrypoint, command, environment, working directory
and user (Kubernetes' ``command``/``args``/``runAsUser``/``runAsGroup`` override them), containerd's default
capability set minus ``drop`` plus ``add``, ``no_new_privs`` unless privilege escalation is allowed, the
runtime's default seccomp profile for ``RuntimeDefault``, the memory limit as a cgroup limit, its own PID,
IPC, UTS and mount namespaces in the pod's network namespace, and exactly the volumes it mounts.
The node never pulls: an image Podman does not have fails as an unreachable registry does
(``ImagePullBackOff``, the pull error in the message).
"""

from __future__ import annotations

import asyncio
import json
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .materialize import ConfigError, quantity

Obj = dict[str, Any]

# containerd's default capabilities (pkg/oci's defaultUnixCaps), the set a container starts from
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
# the profile Podman and CRI-O apply as their default (Debian's containers-common), in Moby's format
SECCOMP_SOURCE = Path("/usr/share/containers/seccomp.json")
# containerd's masked and read-only paths
MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_MOBY_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class ImagePullError(Exception):
    """The node does not have the image and cannot pull it (kubelet: ImagePullBackOff)."""


@dataclass(frozen=True)
class Image:
    id: str
    layers: list[str]  # overlay lower directories, top layer first
    config: Obj  # the image's Config: Entrypoint, Cmd, Env, WorkingDir, User


class ImageStore:
    """Images in the local Podman storage (what `make image` built); never pulls."""

    def __init__(self, podman: str = "podman") -> None:
        self.podman = podman

    async def get(self, reference: str) -> Image:
        proc = await asyncio.create_subprocess_exec(
            self.podman,
            "image",
            "inspect",
            reference,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise ImagePullError(
                f'failed to pull image "{reference}": the node has no registry and its image store '
                f"does not have it ({err.decode().strip().splitlines()[-1] if err.strip() else 'not found'})"
            )
        (info,) = json.loads(out)
        driver = info.get("GraphDriver") or {}
        if driver.get("Name") != "overlay":
            raise ImagePullError(f"image {reference}: container mode needs Podman's overlay storage driver")
        data = driver["Data"]
        layers = [data["UpperDir"], *filter(None, str(data.get("LowerDir", "")).split(":"))]
        return Image(str(info["Id"]), layers, info.get("Config") or {})


# ---------------------------------------------------------------- security context


@dataclass(frozen=True)
class Security:
    uid: int
    gid: int
    groups: list[int]
    read_only_root: bool
    capabilities: list[str]
    no_new_privileges: bool
    seccomp: str  # RuntimeDefault or Unconfined


def _image_file(image: Image, path: str) -> Path | None:
    """A file of the image as its top-most layer has it."""
    for layer in image.layers:
        candidate = Path(layer) / path
        if candidate.exists():
            return candidate
    return None


def _image_user(image: Image) -> tuple[int | None, int | None, str]:
    """The image's USER as (uid, gid, name): numeric parts as numbers, a name looked up in its /etc/passwd."""
    user = str(image.config.get("User") or "")
    if not user:
        return 0, None, ""
    name, _, group = user.partition(":")
    gid = int(group) if group.isdigit() else None
    if name.isdigit():
        return int(name), gid, ""
    passwd = _image_file(image, "etc/passwd")
    for line in passwd.read_text().splitlines() if passwd else []:
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == name:
            return int(fields[2]), gid if gid is not None else int(fields[3]), ""
    return None, gid, name


def security(pod: Obj, container: Obj, image: Image) -> Security:
    """The effective security context (container fields over pod fields), checked as the kubelet checks it:
    a container that must not run as root but would fails with CreateContainerConfigError, the kubelet's
    message included."""
    pod_sc = pod["spec"].get("securityContext") or {}
    sc = container.get("securityContext") or {}
    meta = pod["metadata"]
    where = f'(pod: "{meta["name"]}_{meta["namespace"]}({meta["uid"]})", container: {container["name"]})'
    image_uid, image_gid, image_name = _image_user(image)
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
        if run_as_user is not None:
            if run_as_user == 0:
                raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        elif image_uid == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
        elif image_uid is None:
            raise ConfigError(
                f"container has runAsNonRoot and image has non-numeric user ({image_name}), "
                f"cannot verify user is non-root {where}"
            )
    if run_as_user is None and image_uid is None:
        raise ConfigError(f"image user {image_name!r} is not in the image's /etc/passwd {where}")
    uid = int(run_as_user if run_as_user is not None else image_uid or 0)
    run_as_group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    gid = int(run_as_group if run_as_group is not None else image_gid or 0)
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.insert(0, int(pod_sc["fsGroup"]))
    caps = sc.get("capabilities") or {}
    drop = {_cap(c) for c in caps.get("drop") or []}
    if "CAP_ALL" in drop:
        capabilities: list[str] = []
    else:
        capabilities = [c for c in DEFAULT_CAPABILITIES if c not in drop]
    capabilities += [c for c in map(_cap, caps.get("add") or []) if c not in capabilities]
    profile = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {"type": "Unconfined"}
    if profile["type"] not in ("RuntimeDefault", "Unconfined"):
        raise ConfigError(f"seccomp profile type {profile['type']} is not supported on this node {where}")
    return Security(
        uid=uid,
        gid=gid,
        groups=groups,
        read_only_root=bool(sc.get("readOnlyRootFilesystem", False)),
        capabilities=capabilities,
        # unset means allowed: the kubelet asks for no_new_privs only when it is false
        no_new_privileges=not sc.get("allowPrivilegeEscalation", True),
        seccomp=profile["type"],
    )


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def seccomp_profile(capabilities: list[str]) -> Obj:
    """The default profile in the OCI runtime spec's form: Moby-format rules kept when their architecture and
    capability conditions hold for this container."""
    source = json.loads(SECCOMP_SOURCE.read_text())
    machine = platform.machine()
    arch = _MOBY_ARCH.get(machine, machine)
    architectures: list[str] = []
    for entry in source.get("archMap") or []:
        if entry["architecture"] == f"SCMP_ARCH_{machine.upper()}":
            architectures = [entry["architecture"], *(entry.get("subArchitectures") or [])]
    caps = set(capabilities)
    rules = []
    for rule in source["syscalls"]:
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if includes.get("caps") and not set(includes["caps"]) <= caps:
            continue
        if excludes.get("arches") and arch in excludes["arches"]:
            continue
        if excludes.get("caps") and set(excludes["caps"]) & caps:
            continue
        converted: Obj = {"names": rule["names"], "action": rule["action"]}
        if rule.get("args"):
            converted["args"] = [
                {"index": a["index"], "value": a["value"], "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
                for a in rule["args"]
            ]
        if rule.get("errnoRet") is not None:
            converted["errnoRet"] = rule["errnoRet"]
        rules.append(converted)
    profile: Obj = {
        "defaultAction": source["defaultAction"],
        "architectures": architectures,
        "syscalls": rules,
    }
    if source.get("defaultErrnoRet") is not None:
        profile["defaultErrnoRet"] = source["defaultErrnoRet"]
    return profile


# ---------------------------------------------------------------- the runtime spec


def argv(container: Obj, image: Image) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the entrypoint (and drops the image's CMD), ``args`` the CMD."""
    entrypoint = list(image.config.get("Entrypoint") or [])
    cmd = list(image.config.get("Cmd") or [])
    if container.get("command"):
        return [*container["command"], *(container.get("args") or [])]
    return [*entrypoint, *(container.get("args") or cmd)]


def image_env(image: Image) -> dict[str, str]:
    pairs = (item.partition("=") for item in image.config.get("Env") or [])
    return {key: value for key, _, value in pairs}


@dataclass(frozen=True)
class Mount:
    source: Path
    destination: str
    read_only: bool


def runtime_spec(
    *,
    args: list[str],
    env: dict[str, str],
    cwd: str,
    rootfs: Path,
    hostname: str,
    netns: str,
    sec: Security,
    mounts: list[Mount],
    memory_limit: int | None,
    cgroup: str,
) -> Obj:
    caps = sec.capabilities
    # a non-root process keeps no effective capabilities across exec (no ambient set), as with containerd
    effective = caps if sec.uid == 0 else []
    linux: Obj = {
        "namespaces": [
            {"type": "pid"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "network", "path": f"/var/run/netns/{netns}"},
        ],
        "cgroupsPath": cgroup,
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    }
    if memory_limit is not None:
        linux["resources"]["memory"] = {"limit": memory_limit}
    if sec.seccomp == "RuntimeDefault":
        linux["seccomp"] = seccomp_profile(caps)
    base_mounts: list[Obj] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]
    binds = [
        {
            "destination": m.destination,
            "type": "bind",
            "source": str(m.source),
            "options": ["rbind", "rprivate", "ro" if m.read_only else "rw"],
        }
        for m in mounts
    ]
    user: Obj = {"uid": sec.uid, "gid": sec.gid}
    if sec.groups:
        user["additionalGids"] = sec.groups
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": user,
            "args": args,
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": cwd,
            "capabilities": {"bounding": caps, "permitted": effective, "effective": effective},
            "noNewPrivileges": sec.no_new_privileges,
        },
        "root": {"path": str(rootfs), "readonly": sec.read_only_root},
        "hostname": hostname,
        "mounts": base_mounts + binds,
        "linux": linux,
    }


def memory_limit(container: Obj) -> int | None:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return int(quantity(limit)) if limit else None


# ---------------------------------------------------------------- root filesystem


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode(errors="replace").strip()


async def mount_rootfs(image: Image, directory: Path) -> Path:
    """A fresh writable layer over the image's layers (a restarted container starts from the image again)."""
    await unmount_rootfs(directory)
    shutil.rmtree(directory, ignore_errors=True)
    upper, work, merged = directory / "upper", directory / "work", directory / "rootfs"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    options = f"lowerdir={':'.join(image.layers)},upperdir={upper},workdir={work}"
    code, out = await _run("mount", "-t", "overlay", "overlay", "-o", options, str(merged))
    if code != 0:
        raise OSError(f"mounting the image's root filesystem failed: {out}")
    return merged


async def unmount_rootfs(directory: Path) -> None:
    merged = directory / "rootfs"
    if merged.is_mount():
        await _run("umount", "--lazy", str(merged))
