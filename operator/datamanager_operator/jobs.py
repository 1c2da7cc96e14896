"""The batch/v1 Job of one run: its claimed name, owner, finalizer, least privilege and failure policy."""

from __future__ import annotations

from typing import Any

from datamanager.api.common import RunSpecBase
from datamanager.api.status import RunRef
from datamanager.contract import (
    ENV_MONGODB_URI,
    ENV_MYSQL_DSN,
    ENV_RESOURCE,
    ENV_RUN_ID,
    ENV_SHARDS,
    ENV_SPEC,
    ExitCode,
)

from .model import (
    ANNOTATION_RUN_UID,
    ANNOTATION_SCHEDULED_TIME,
    ANNOTATION_TRIGGER,
    API_VERSION,
    FINALIZER,
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_RESOURCE,
    LABEL_RESOURCE_UID,
    LABEL_RUN_ID,
    MANAGED_BY,
    WORKER_COMMAND,
    Body,
    Kind,
)
from .settings import OperatorSettings

CONTAINER = "worker"
# ArgoCD does not track what the operator creates; with this, its ignoreResourceUpdates rules keep a Job's or
# pod's status churn from refreshing the Application that owns the resource (docs/argocd.md)
ARGOCD_QUIET = {"argocd.argoproj.io/ignore-resource-updates": "true"}
NON_ROOT_UID = 65532
LABEL_VALUE_MAX = 63


def selector_labels(kind: Kind, name: str, uid: str) -> dict[str, str]:
    """The resource's name is a label only when it fits one (a resource name that short is a valid label
    value): the API server refuses a Job with a longer one. The uid label and the Job's controller reference
    identify every resource."""
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: kind, LABEL_RESOURCE_UID: uid}
    if len(name) <= LABEL_VALUE_MAX:
        labels[LABEL_RESOURCE] = name
    return labels


def build_job(kind: Kind, meta: Body, spec: RunSpecBase, run: RunRef, settings: OperatorSettings) -> Body:
    """The Job of ``run`` as claimed in status: its name, and the run's uid as an annotation, so a Job found
    under that name is known to be this run's and not another's."""
    labels = {
        **selector_labels(kind, meta["name"], meta["uid"]),
        LABEL_RUN_ID: run.id,
        "app.kubernetes.io/name": "datamanager",
        "app.kubernetes.io/component": f"{WORKER_COMMAND[kind]}-worker",
    }
    annotations: dict[str, str] = {
        ANNOTATION_TRIGGER: run.trigger,
        ANNOTATION_RUN_UID: run.uid,
        **ARGOCD_QUIET,
    }
    if run.scheduled_time:
        annotations[ANNOTATION_SCHEDULED_TIME] = run.scheduled_time
    overrides = spec.job
    name = run.job_name
    shards = overrides.parallelism
    env: list[Body] = [
        {"name": ENV_SPEC, "value": spec.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": ENV_RUN_ID, "value": name},
        {"name": ENV_RESOURCE, "value": f"{kind}/{meta['namespace']}/{meta['name']}"},
        # credentials by reference only: the operator never reads these Secrets
        {"name": ENV_MYSQL_DSN, "valueFrom": {"secretKeyRef": spec.source.dsn_secret_ref.model_dump()}},
        {"name": ENV_MONGODB_URI, "valueFrom": {"secretKeyRef": spec.sink.uri_secret_ref.model_dump()}},
    ]
    if shards > 1:
        env.append({"name": ENV_SHARDS, "value": str(shards)})
    container: Body = {
        "name": CONTAINER,
        "image": overrides.image or settings.worker_image,
        "args": [WORKER_COMMAND[kind]],  # the image's entrypoint is `datamanager`
        "env": env,
        "resources": overrides.resources.model_dump(exclude_defaults=False),
        # only the summary the worker writes: a log tail could carry anything, credentials included
        "terminationMessagePolicy": "File",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if overrides.image_pull_policy:
        container["imagePullPolicy"] = overrides.image_pull_policy
    pod_spec: Body = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,  # workers need no Kubernetes API access at all
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_UID,
            "runAsGroup": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }
    if settings.worker_service_account:
        pod_spec["serviceAccountName"] = settings.worker_service_account
    if settings.worker_image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in settings.worker_image_pull_secrets]
    optional: dict[str, Any] = {
        "nodeSelector": overrides.node_selector,
        "tolerations": overrides.tolerations,
        "affinity": overrides.affinity,
        "priorityClassName": overrides.priority_class_name,
    }
    pod_spec.update({k: v for k, v in optional.items() if v})
    job_spec: Body = {
        "backoffLimit": overrides.backoff_limit,
        "activeDeadlineSeconds": overrides.active_deadline_seconds,
        "ttlSecondsAfterFinished": overrides.ttl_seconds_after_finished,
        "podFailurePolicy": {
            "rules": [
                # a permanent error (invalid configuration) is never worth a retry
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "In",
                        "values": [int(ExitCode.INVALID_CONFIG)],
                    },
                },
                # an evicted or preempted pod is not the worker's fault
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {
                "labels": {**settings.worker_pod_labels, **labels},
                "annotations": {**settings.worker_pod_annotations, **ARGOCD_QUIET},
            },
            "spec": pod_spec,
        },
    }
    if shards > 1:
        job_spec.update({"completionMode": "Indexed", "completions": shards, "parallelism": shards})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "finalizers": [FINALIZER],
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }
