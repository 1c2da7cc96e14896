# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Container mode: pods run from the built image through runc, and the security context the chart and the
operator's Jobs declare is enforced, failing the way Kubernetes makes it fail. Skipped, with the reason, where
the rig runs pods as local processes (no Podman, runc or image: see docs/rig.md)."""

from __future__ import annotations

import errno
import json
import platform
import subprocess
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod, Secret

from tests.conftest import REPO, wait_for
from tests.fixtures.kube import resource

Obj = dict[str, Any]
VALUES = yaml.safe_load((REPO / "charts" / "datamanager" / "values.yaml").read_text())


@pytest.fixture(autouse=True)
def container_mode(rig_env: dict[str, str]) -> str:
    if rig_env.get("RIG_NODE_RUNTIME") != "runc":
        reason = rig_env.get("RIG_NODE_RUNTIME_REASON", "the rig predates container mode")
        pytest.skip(f"the rig runs pods as local processes, not containers: {reason}")
    return rig_env["RIG_IMAGE"]


def hardened_job(name: str, image: str, script: str, **container: Any) -> Job:
    """A one-pod Job with the chart's pod and container security contexts (what users deploy), running
    ``script`` with the image's Python."""
    spec: Obj = {
        "restartPolicy": "Never",
        "securityContext": VALUES["podSecurityContext"],
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "main",
                "image": image,
                "command": ["python3", "-c", script],
                "securityContext": VALUES["securityContext"],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                **container,
            }
        ],
    }
    return resource(
        Job,
        {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": {"spec": spec}}},
    )


def finished(kube: Client, namespace: str, name: str) -> Obj | None:
    pods = list(kube.list(Pod, namespace=namespace, labels={"job-name": name}))
    for pod in pods:
        if pod.status and pod.status.phase in ("Succeeded", "Failed"):
            terminated = pod.status.containerStatuses[0].state.terminated
            return {
                "phase": pod.status.phase,
                "exitCode": terminated.exitCode,
                "reason": terminated.reason,
                "message": terminated.message or "",
            }
    return None


def waiting(kube: Client, namespace: str, name: str) -> Obj | None:
    for pod in kube.list(Pod, namespace=namespace, labels={"job-name": name}):
        for status in pod.status.containerStatuses or [] if pod.status else []:
            if status.state.waiting and status.state.waiting.reason not in (None, "ContainerCreating"):
                return {"reason": status.state.waiting.reason, "message": status.state.waiting.message}
    return None


def test_a_pod_that_writes_its_root_filesystem_fails_and_its_volumes_stay_writable(
    kube: Client, namespace: str, container_mode: str
) -> None:
    script = (
        "open('/scratch/ok', 'w').write('x')\n"  # an emptyDir the pod mounts: writable
        "open('/var/tmp/state', 'w')\n"  # the image's own file system: read-only
    )
    job = hardened_job(
        "rootfs",
        container_mode,
        script,
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    job.spec.template.spec.volumes = [{"name": "scratch", "emptyDir": {}}]
    kube.create(job, namespace=namespace)
    outcome = wait_for(lambda: finished(kube, namespace, "rootfs"), 60, "the pod to end")
    assert (outcome["phase"], outcome["exitCode"], outcome["reason"]) == ("Failed", 1, "Error")
    assert "OSError: [Errno 30] Read-only file system: '/var/tmp/state'" in outcome["message"]


# These two test the node's own refusal of root: Pod Security restricted would refuse the pods before it
ROOT_ALLOWED = pytest.mark.pod_security("baseline")


@ROOT_ALLOWED
def test_a_pod_that_must_not_run_as_root_but_would_never_starts(
    kube: Client, namespace: str, container_mode: str
) -> None:
    job = hardened_job("asroot", container_mode, "print('never')")
    job.spec.template.spec.securityContext.runAsUser = 0
    kube.create(job, namespace=namespace)
    state = wait_for(lambda: waiting(kube, namespace, "asroot"), 30, "the container to be refused")
    assert state["reason"] == "CreateContainerConfigError"
    assert state["message"].startswith("container's runAsUser breaks non-root policy (pod: \"asroot-")
    assert state["message"].endswith(", container: main)")
    (pod,) = kube.list(Pod, namespace=namespace, labels={"job-name": "asroot"})
    assert pod.status.phase == "Pending"  # the kubelet retries; nothing ever ran


@ROOT_ALLOWED
def test_a_root_container_without_capabilities_cannot_chown(
    kube: Client, namespace: str, container_mode: str
) -> None:
    script = "import os\nopen('/tmp/f', 'w')\nos.chown('/tmp/f', 1, 1)\nprint('chowned')"
    for name, drop in (("withcaps", []), ("nocaps", ["ALL"])):
        job = hardened_job(name, container_mode, script, securityContext={"capabilities": {"drop": drop}})
        job.spec.template.spec.securityContext = {"runAsUser": 0}
        kube.create(job, namespace=namespace)
    allowed = wait_for(lambda: finished(kube, namespace, "withcaps"), 60, "the root pod with CAP_CHOWN")
    denied = wait_for(lambda: finished(kube, namespace, "nocaps"), 60, "the root pod without capabilities")
    assert allowed["phase"] == "Succeeded"
    assert (denied["phase"], denied["exitCode"]) == ("Failed", 1)
    assert "PermissionError: [Errno 1] Operation not permitted: '/tmp/f'" in denied["message"]


PROBE = """
import ctypes, json, os
status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
libc = ctypes.CDLL(None, use_errno=True)
# add_key(NULL, ...) (x86_64: 248): the kernel answers EFAULT; the default profile, which does not list it,
# answers ENOSYS before the kernel sees it
libc.syscall(248, 0, 0, 0, 0, 0)
mounts = [line.split()[4] for line in open('/proc/self/mountinfo')]
try:
    memory = int(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())
except OSError:
    memory = None
print(json.dumps({
    'uid': os.getuid(), 'gid': os.getgid(), 'groups': sorted(os.getgroups()),
    'caps': [status[k].strip() for k in ('CapBnd', 'CapPrm', 'CapEff')],
    'no_new_privs': status['NoNewPrivs'].strip(), 'seccomp': status['Seccomp'].strip(),
    'add_key_errno': ctypes.get_errno(), 'memory': memory, 'env': sorted(os.environ),
    'mounts': sorted(
        m for m in mounts if m == '/dev/termination-log' or not m.startswith(('/proc', '/sys', '/dev'))
    ),
    'secret': open('/etc/creds/dsn').read(),
}), file=open('/dev/termination-log', 'w'))
"""


def test_the_security_context_and_mounts_are_what_the_process_gets(
    kube: Client, namespace: str, container_mode: str
) -> None:
    kube.create(
        Secret(metadata=ObjectMeta(name="creds"), stringData={"dsn": "mysql://x"}), namespace=namespace
    )
    job = hardened_job(
        "probe",
        container_mode,
        PROBE,
        resources={"limits": {"memory": "96Mi"}},
        env=[{"name": "FROM_POD", "value": "1"}],
        volumeMounts=[{"name": "creds", "mountPath": "/etc/creds", "readOnly": True}],
    )
    job.spec.template.spec.volumes = [{"name": "creds", "secret": {"secretName": "creds"}}]
    kube.create(job, namespace=namespace)
    outcome = wait_for(lambda: finished(kube, namespace, "probe"), 60, "the probe to end")
    assert outcome["phase"] == "Succeeded", outcome["message"]
    seen = json.loads(outcome["message"])
    pod_sc = VALUES["podSecurityContext"]
    assert (seen["uid"], seen["gid"]) == (pod_sc["runAsUser"], pod_sc["runAsGroup"])
    assert seen["groups"] == [pod_sc["fsGroup"]]
    assert seen["caps"] == ["0000000000000000"] * 3  # capabilities: drop: [ALL]
    assert seen["no_new_privs"] == "1"  # allowPrivilegeEscalation: false
    assert seen["seccomp"] == "2"  # filter mode: seccompProfile RuntimeDefault
    if platform.machine() == "x86_64":  # the probe's syscall number is x86_64's
        assert seen["add_key_errno"] == errno.ENOSYS  # the default profile's answer, not the kernel's
    assert seen["memory"] == 96 * 2**20
    assert seen["secret"] == "mysql://x"  # the secret volume, readable through fsGroup
    # exactly the pod's volume and what the kubelet adds; no host directory, no other pod's files
    assert seen["mounts"] == sorted(
        ["/", "/dev/termination-log", "/etc/creds", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    )
    # the image's environment, the pod's and the kubelet's; nothing of the node's own
    inspect = ["podman", "image", "inspect", "--format", "{{json .Config.Env}}", container_mode]
    image_env = json.loads(subprocess.run(inspect, capture_output=True, check=True, text=True).stdout)
    kubelet = ["HOME", "HOSTNAME", *(f"KUBERNETES_SERVICE_{k}" for k in ("HOST", "PORT", "PORT_HTTPS"))]
    assert seen["env"] == sorted({*(e.partition("=")[0] for e in image_env), "FROM_POD", *kubelet})


def test_a_container_over_its_memory_limit_is_killed(
    kube: Client, namespace: str, container_mode: str
) -> None:
    script = "blocks = [bytearray(8 * 2**20) for _ in range(32)]\nprint('allocated 256 MiB')"
    kube.create(
        hardened_job("hungry", container_mode, script, resources={"limits": {"memory": "64Mi"}}),
        namespace=namespace,
    )
    outcome = wait_for(lambda: finished(kube, namespace, "hungry"), 60, "the pod to end")
    assert (outcome["phase"], outcome["exitCode"]) == ("Failed", 137)  # SIGKILL by the OOM killer


def test_an_image_the_node_does_not_have_fails_to_pull(
    kube: Client, namespace: str, container_mode: str
) -> None:
    missing = container_mode.rpartition(":")[0] + ":no-such-tag"
    kube.create(hardened_job("nopull", missing, "print('never')"), namespace=namespace)
    state = wait_for(lambda: waiting(kube, namespace, "nopull"), 30, "the pull to fail")
    assert state["reason"] == "ImagePullBackOff"
    assert state["message"].startswith(f'Back-off pulling image "{missing}": ErrImagePull: ')


def test_the_image_is_lean_labelled_and_has_no_build_tools(
    kube: Client, namespace: str, container_mode: str
) -> None:
    inspect = ["podman", "image", "inspect", container_mode]
    (info,) = json.loads(subprocess.run(inspect, capture_output=True, check=True, text=True).stdout)
    assert info["Size"] < 250_000_000, f"the image grew to {info['Size'] / 1e6:.0f} MB (docs/rig.md)"
    assert info["Config"]["User"] == "65532:65532"
    assert info["Config"]["Entrypoint"] == ["datamanager"]
    labels = info["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "datamanager"
    assert labels["org.opencontainers.image.version"]
    script = (
        "import importlib.util, json, shutil\n"
        "tools = ['pip', 'pip3', 'gcc', 'cc', 'c++', 'make']\n"
        "modules = ['pip', 'setuptools', 'ensurepip', 'hatchling']\n"
        "print(json.dumps({'tools': [t for t in tools if shutil.which(t)],\n"
        "                  'modules': [m for m in modules if importlib.util.find_spec(m)]}),\n"
        "      file=open('/dev/termination-log', 'w'))\n"
    )
    kube.create(hardened_job("bare", container_mode, script), namespace=namespace)
    outcome = wait_for(lambda: finished(kube, namespace, "bare"), 60, "the pod to end")
    assert outcome["phase"] == "Succeeded", outcome["message"]
    assert json.loads(outcome["message"]) == {"tools": [], "modules": []}
