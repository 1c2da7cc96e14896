# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""The process node runs pods as local processes; the real Job and Deployment controllers see the outcomes."""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any

import psutil
import pytest
from lightkube import Client
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Pod, Secret

from tests.conftest import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY, wait_for
from tests.fixtures.kube import name_of, resource

Obj = dict[str, Any]
# Container mode runs pods from the rig's image (sh, coreutils and python3 are in both of its bases); the
# process node ignores images. RIG_IMAGE is in the environment through `make` or `source .rig/env`.
IMAGE = os.environ.get("RIG_IMAGE", "busybox")


def job(name: str, command: str, **spec: Any) -> Job:
    container = {"name": "main", "image": IMAGE, "command": ["sh", "-c", command]}
    template: Obj = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [{**container, **RESTRICTED_CONTAINER_SECURITY}],
            **RESTRICTED_POD_SECURITY,
        }
    }
    return resource(
        Job, {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template, **spec}}
    )


def job_condition(kube: Client, namespace: str, name: str) -> Obj | None:
    status = kube.get(Job, name, namespace=namespace).status
    for condition in status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return {"type": condition.type, "reason": condition.reason}
    return None


def pods_of(kube: Client, namespace: str, job_name: str) -> list[Pod]:
    return list(kube.list(Pod, namespace=namespace, labels={"job-name": job_name}))


def marker_processes(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_a_job_whose_container_exits_0_completes_with_its_termination_message(
    kube: Client, namespace: str
) -> None:
    kube.create(job("ok", "echo starting; printf 'all good' > /dev/termination-log"), namespace=namespace)
    assert wait_for(lambda: job_condition(kube, namespace, "ok"), 60, "job ok") == {
        "type": "Complete",
        "reason": "CompletionsReached",
    }
    (pod,) = pods_of(kube, namespace, "ok")
    terminated = pod.status.containerStatuses[0].state.terminated
    assert (terminated.exitCode, terminated.reason, terminated.message) == (0, "Completed", "all good")
    assert pod.status.phase == "Succeeded"
    assert pod.status.podIP
    assert pod.status.podIP != pod.status.hostIP


def test_backoff_limit_ends_failed_after_three_pods(kube: Client, namespace: str) -> None:
    kube.create(job("three", "exit 3", backoffLimit=2), namespace=namespace)
    assert wait_for(lambda: job_condition(kube, namespace, "three"), 120, "job three") == {
        "type": "Failed",
        "reason": "BackoffLimitExceeded",
    }
    pods = pods_of(kube, namespace, "three")
    assert len(pods) == 3
    assert {p.status.containerStatuses[0].state.terminated.exitCode for p in pods} == {3}


def test_pod_failure_policy_on_exit_code_2_fails_the_job_at_once(kube: Client, namespace: str) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}}]}
    kube.create(job("permanent", "exit 2", backoffLimit=5, podFailurePolicy=policy), namespace=namespace)
    assert wait_for(lambda: job_condition(kube, namespace, "permanent"), 60, "job permanent") == {
        "type": "Failed",
        "reason": "PodFailurePolicy",
    }
    assert len(pods_of(kube, namespace, "permanent")) == 1


def test_active_deadline_kills_a_sleeping_pod(kube: Client, namespace: str) -> None:
    marker = f"sleep-{uuid.uuid4().hex[:8]}"
    kube.create(
        job("slow", f"exec python3 -c 'import time; time.sleep(300)' {marker}", activeDeadlineSeconds=3),
        namespace=namespace,
    )
    wait_for(lambda: marker_processes(marker), 30, "the sleeping process to start")
    assert wait_for(lambda: job_condition(kube, namespace, "slow"), 60, "job slow") == {
        "type": "Failed",
        "reason": "DeadlineExceeded",
    }
    wait_for(lambda: not marker_processes(marker), 45, "the process to end with its pod")


def test_indexed_job_runs_each_index_with_its_completion_index(kube: Client, namespace: str) -> None:
    kube.create(
        job(
            "indexed",
            'printf "index=$JOB_COMPLETION_INDEX" > /dev/termination-log',
            completions=3,
            parallelism=3,
            completionMode="Indexed",
        ),
        namespace=namespace,
    )
    assert (
        wait_for(lambda: job_condition(kube, namespace, "indexed"), 120, "job indexed")["type"] == "Complete"
    )
    messages = {
        p.status.containerStatuses[0].state.terminated.message for p in pods_of(kube, namespace, "indexed")
    }
    assert messages == {"index=0", "index=1", "index=2"}


def test_fallback_to_logs_on_error_puts_the_log_tail_in_the_message(kube: Client, namespace: str) -> None:
    failing = job("fallback", "echo 'cannot connect to source'; exit 1")
    failing.spec.template.spec.containers[0].terminationMessagePolicy = "FallbackToLogsOnError"
    kube.create(failing, namespace=namespace)
    wait_for(lambda: job_condition(kube, namespace, "fallback"), 60, "job fallback")
    (pod,) = pods_of(kube, namespace, "fallback")
    assert pod.status.containerStatuses[0].state.terminated.message.strip() == "cannot connect to source"


def test_secret_and_configmap_env_and_volumes_resolve(kube: Client, namespace: str) -> None:
    kube.create(
        Secret(metadata=ObjectMeta(name="creds"), stringData={"dsn": "mysql://u:p@h/db"}), namespace=namespace
    )
    kube.create(
        ConfigMap(metadata=ObjectMeta(name="cfg"), data={"mode": "fast", "conf.yaml": "a: 1\n"}),
        namespace=namespace,
    )
    check = (
        'set -x; test "$DSN" = mysql://u:p@h/db && test "$MODE" = fast && test "$CFG_mode" = fast '
        '&& test "$POD_NAME" = "$(hostname)" && test "$MEM_MI" = 64 '
        '&& test "$(cat /etc/creds/dsn)" = mysql://u:p@h/db && test "$(cat /etc/cfg/conf.yaml)" = "a: 1" '
        '&& grep -q "app=\\"probe\\"" /etc/podinfo/labels && test -d /scratch && touch /scratch/x '
        "&& test ! -e /var/run/secrets/kubernetes.io/serviceaccount/token"
    )
    manifest = job("env", check).to_dict()
    pod_spec = manifest["spec"]["template"]["spec"]
    manifest["spec"]["template"]["metadata"] = {"labels": {"app": "probe"}}
    pod_spec["automountServiceAccountToken"] = False
    pod_spec["containers"][0].update(
        {
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"limits": {"memory": "64Mi"}},
            "env": [
                {"name": "DSN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "dsn"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {
                    "name": "MEM_MI",
                    "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
                },
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "volumeMounts": [
                {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                {"name": "cfg", "mountPath": "/etc/cfg"},
                {"name": "podinfo", "mountPath": "/etc/podinfo"},
                {"name": "scratch", "mountPath": "/scratch"},
            ],
        }
    )
    pod_spec["volumes"] = [
        {"name": "creds", "secret": {"secretName": "creds"}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {
            "name": "podinfo",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
        {"name": "scratch", "emptyDir": {}},
    ]
    kube.create(resource(Job, manifest), namespace=namespace)
    outcome = wait_for(lambda: job_condition(kube, namespace, "env"), 60, "job env")
    (pod,) = pods_of(kube, namespace, "env")
    assert outcome["type"] == "Complete", pod.status.containerStatuses[0].state.terminated.message


def test_a_missing_secret_shows_create_container_config_error(kube: Client, namespace: str) -> None:
    manifest = job("nosecret", "true").to_dict()
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "DSN", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "dsn"}}}
    ]
    kube.create(resource(Job, manifest), namespace=namespace)

    def waiting_reason() -> Obj | None:
        for pod in pods_of(kube, namespace, "nosecret"):
            for status in (pod.status.containerStatuses or []) if pod.status else []:
                if status.state.waiting and status.state.waiting.reason == "CreateContainerConfigError":
                    return {"reason": status.state.waiting.reason, "message": status.state.waiting.message}
        return None

    assert wait_for(waiting_reason, 30, "CreateContainerConfigError") == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "absent" not found',
    }
    kube.create(Secret(metadata=ObjectMeta(name="absent"), stringData={"dsn": "x"}), namespace=namespace)
    assert wait_for(
        lambda: job_condition(kube, namespace, "nosecret"), 60, "the job to run once the Secret exists"
    )


def test_deployment_with_readiness_probe_becomes_available_and_replaces_a_deleted_pod(
    kube: Client, namespace: str
) -> None:
    marker = f"web-{uuid.uuid4().hex[:8]}"
    container = {
        "name": "web",
        "image": IMAGE,
        # every replica listens on the same port: each pod has its own network namespace and address
        "command": ["python", "-m", "http.server", "8080", "--directory", "/tmp"],
        "env": [{"name": "MARKER", "value": marker}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2},
        **RESTRICTED_CONTAINER_SECURITY,
    }
    labels: LabelSelector = {"app": "web"}
    kube.create(
        resource(
            Deployment,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [container], **RESTRICTED_POD_SECURITY},
                    },
                },
            },
        ),
        namespace=namespace,
    )

    def available() -> bool:
        status = kube.get(Deployment, "web", namespace=namespace).status
        return bool(status and status.availableReplicas == 2)

    wait_for(available, 60, "2 available replicas")
    pods = list(kube.list(Pod, namespace=namespace, labels=labels))
    assert len({p.status.podIP for p in pods}) == 2
    victim = name_of(pods[0])
    kube.delete(Pod, victim, namespace=namespace)
    wait_for(lambda: _deleted(kube, namespace, victim), 45, "the deleted pod to go away")
    wait_for(available, 60, "a replacement to become available")
    assert victim not in {p.metadata.name for p in kube.list(Pod, namespace=namespace, labels=labels)}


def _deleted(kube: Client, namespace: str, name: str) -> bool:
    try:
        kube.get(Pod, name, namespace=namespace)
    except ApiError as exc:
        return exc.status.code == 404
    return False


def test_kubectl_logs_reads_a_pods_output(kube: Client, namespace: str, rig_env: dict[str, str]) -> None:
    kube.create(job("talker", "echo line-one; echo line-two"), namespace=namespace)
    wait_for(lambda: job_condition(kube, namespace, "talker"), 60, "job talker")
    out = subprocess.run(
        ["kubectl", "logs", "-n", namespace, "job/talker", "--tail=1"],
        env={"KUBECONFIG": rig_env["KUBECONFIG"], "PATH": _kube_path(rig_env)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "line-two\n"


def _kube_path(rig_env: dict[str, str]) -> str:
    import os
    import shutil

    kubectl = shutil.which("kubectl", path=os.environ.get("PATH"))
    if kubectl is None or "datamanager-rig" not in kubectl:
        from tests.rig.rig import CACHE, versions

        return f"{CACHE}/kubernetes-{versions()['KUBERNETES_VERSION']}/bin:{os.environ['PATH']}"
    return os.environ["PATH"]


@pytest.mark.usefixtures("namespace")
def test_deleting_a_namespace_leaves_no_process(kube: Client) -> None:
    marker = f"orphan-{uuid.uuid4().hex[:8]}"
    name = f"t-{uuid.uuid4().hex[:8]}"
    from lightkube.resources.core_v1 import Namespace

    kube.create(Namespace(metadata=ObjectMeta(name=name)))
    kube.create(job("sleeper", f"exec python3 -c 'import time; time.sleep(300)' {marker}"), namespace=name)
    wait_for(lambda: marker_processes(marker), 30, "the process to start")
    kube.delete(Namespace, name)
    wait_for(lambda: not marker_processes(marker), 60, "the process to end with its namespace")
