"""The process node's container mode (tests/rig/procnode/oci.py) turns a pod into what runc enforces; these
check that translation against the kubelet's rules without running a container (the e2e tier's
tests/e2e/test_containers.py checks what a running container gets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.rig.procnode.materialize import ConfigError
from tests.rig.procnode.oci import (
    DEFAULT_CAPABILITIES,
    SECCOMP_SOURCE,
    Image,
    Mount,
    argv,
    runtime_spec,
    seccomp_profile,
    security,
)

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": {}}


def image(tmp_path: Path, user: str = "", passwd: str = "") -> Image:
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True, exist_ok=True)
    (layer / "etc" / "passwd").write_text(passwd)
    return Image("sha256:x", [str(layer)], {"User": user, "Entrypoint": ["datamanager"], "Cmd": ["--help"]})


def pod(**security_context: Any) -> dict[str, Any]:
    return {**POD, "spec": {"securityContext": security_context}}


def test_run_as_non_root_with_uid_0_is_refused_with_the_kubelets_message(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^container's runAsUser breaks non-root policy \(pod: \"p_ns\(u-1\)\", "
        r"container: c\)$",
    ):
        security(pod(runAsNonRoot=True, runAsUser=0), {"name": "c"}, image(tmp_path, "65532"))


def test_run_as_non_root_with_an_image_running_as_root_is_refused(tmp_path: Path) -> None:
    for user in ("", "0", "root", "0:0"):
        passwd = "root:x:0:0:root:/root:/bin/sh\n"
        with pytest.raises(ConfigError, match="container has runAsNonRoot and image will run as root"):
            security(pod(runAsNonRoot=True), {"name": "c"}, image(tmp_path, user, passwd))


def test_run_as_non_root_with_an_unknown_user_name_cannot_be_verified(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"image has non-numeric user \(app\), cannot verify"):
        security(pod(runAsNonRoot=True), {"name": "c"}, image(tmp_path, "app"))


def test_the_container_context_overrides_the_pods_and_the_images_user(tmp_path: Path) -> None:
    sec = security(
        pod(runAsUser=1000, runAsGroup=2000, fsGroup=3000, supplementalGroups=[4000]),
        {"name": "c", "securityContext": {"runAsUser": 1001}},
        image(tmp_path, "65532:65532"),
    )
    assert (sec.uid, sec.gid, sec.groups) == (1001, 2000, [3000, 4000])
    named = security(pod(), {"name": "c"}, image(tmp_path, "app", "app:x:70:71::/:/bin/sh\n"))
    assert (named.uid, named.gid) == (70, 71)


def test_capabilities_start_from_the_runtime_default_minus_drop_plus_add(tmp_path: Path) -> None:
    def caps(**capabilities: list[str]) -> list[str]:
        container = {"name": "c", "securityContext": {"capabilities": capabilities}}
        return security(pod(), container, image(tmp_path)).capabilities

    assert caps() == list(DEFAULT_CAPABILITIES)
    assert caps(drop=["ALL"]) == []
    assert caps(drop=["ALL"], add=["NET_BIND_SERVICE"]) == ["CAP_NET_BIND_SERVICE"]
    assert "CAP_CHOWN" not in caps(drop=["chown"])
    assert caps(add=["SYS_ADMIN"])[-1] == "CAP_SYS_ADMIN"


def test_defaults_are_kubernetes_defaults(tmp_path: Path) -> None:
    sec = security(pod(), {"name": "c"}, image(tmp_path))
    assert (sec.read_only_root, sec.no_new_privileges, sec.seccomp) == (False, False, "Unconfined")
    hardened = security(
        pod(seccompProfile={"type": "RuntimeDefault"}),
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}},
        image(tmp_path, "65532"),
    )
    assert (hardened.read_only_root, hardened.no_new_privileges, hardened.seccomp) == (
        True,
        True,
        "RuntimeDefault",
    )


def test_a_localhost_seccomp_profile_is_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="seccomp profile type Localhost is not supported"):
        security(
            pod(seccompProfile={"type": "Localhost", "localhostProfile": "x"}), {"name": "c"}, image(tmp_path)
        )


def test_command_replaces_the_entrypoint_and_args_the_cmd(tmp_path: Path) -> None:
    img = image(tmp_path)
    assert argv({}, img) == ["datamanager", "--help"]
    assert argv({"args": ["audit"]}, img) == ["datamanager", "audit"]
    assert argv({"command": ["sh", "-c"]}, img) == ["sh", "-c"]  # the image's CMD goes with its entrypoint
    assert argv({"command": ["sh"], "args": ["-c", "true"]}, img) == ["sh", "-c", "true"]


@pytest.mark.skipif(not SECCOMP_SOURCE.exists(), reason=f"{SECCOMP_SOURCE} (containers-common) is missing")
def test_the_default_seccomp_profile_follows_the_containers_capabilities() -> None:
    def allowed(caps: list[str]) -> set[str]:
        profile = seccomp_profile(caps)
        assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
        assert profile["architectures"]
        return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}

    without, with_admin = allowed([]), allowed(["CAP_SYS_ADMIN"])
    assert {"read", "write", "exit_group"} <= without
    assert "bpf" not in without
    assert "bpf" in with_admin
    assert "add_key" not in with_admin  # never allowed: the default errno answers


def test_the_runtime_spec_carries_the_security_context(tmp_path: Path) -> None:
    sec = security(
        pod(runAsUser=65532, runAsGroup=65532, fsGroup=65532, seccompProfile={"type": "Unconfined"}),
        {"name": "c", "securityContext": {"readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}},
        image(tmp_path),
    )
    spec = runtime_spec(
        args=["datamanager"],
        env={"A": "1"},
        cwd="/",
        rootfs=tmp_path / "rootfs",
        hostname="p",
        netns="dmr-1",
        sec=sec,
        mounts=[Mount(tmp_path / "v", "/etc/v", True)],
        memory_limit=64 * 2**20,
        cgroup="/dmr/p-c",
    )
    assert spec["root"] == {"path": str(tmp_path / "rootfs"), "readonly": True}
    assert spec["process"]["user"] == {"uid": 65532, "gid": 65532, "additionalGids": [65532]}
    assert spec["process"]["capabilities"] == {"bounding": [], "permitted": [], "effective": []}
    assert spec["linux"]["resources"]["memory"] == {"limit": 64 * 2**20}
    assert {"type": "network", "path": "/var/run/netns/dmr-1"} in spec["linux"]["namespaces"]
    assert "seccomp" not in spec["linux"]  # Unconfined
    (bind,) = [m for m in spec["mounts"] if m["type"] == "bind"]
    assert bind == {
        "destination": "/etc/v",
        "type": "bind",
        "source": str(tmp_path / "v"),
        "options": ["rbind", "rprivate", "ro"],
    }
