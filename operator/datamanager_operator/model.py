"""What the operator knows about the two kinds: names, labels, and how a run's Job is identified."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from datamanager.api import AnalyticsJobSpec, DataAuditSpec
from datamanager.api.common import GROUP, VERSION

Body = dict[str, Any]
Kind = Literal["DataAudit", "AnalyticsJob"]

PLURALS: dict[Kind, str] = {"DataAudit": "dataaudits", "AnalyticsJob": "analyticsjobs"}
SPECS: dict[Kind, type[DataAuditSpec] | type[AnalyticsJobSpec]] = {
    "DataAudit": DataAuditSpec,
    "AnalyticsJob": AnalyticsJobSpec,
}
WORKER_COMMAND: dict[Kind, str] = {"DataAudit": "audit", "AnalyticsJob": "analytics"}

MANAGED_BY = "datamanager-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_KIND = f"{GROUP}/kind"
LABEL_RESOURCE = f"{GROUP}/resource"  # the resource's name, when it fits in a label value
LABEL_RESOURCE_UID = f"{GROUP}/resource-uid"
LABEL_RUN_ID = f"{GROUP}/run-id"
ANNOTATION_RUN_UID = f"{GROUP}/run-uid"
# A Job keeps it until its run's outcome is in the resource's status: nothing (TTL, a user, the history limit)
# can make a Job disappear before the operator has recorded how its run ended.
FINALIZER = f"{GROUP}/run-outcome"
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_SCHEDULED_TIME = f"{GROUP}/scheduled-time"
ANNOTATION_RUN_NOW = (
    f"{GROUP}/run-now"  # users: kubectl annotate <kind>/<name> datamanager.petrosa.io/run-now=$(date +%s)
)
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True, order=True)
class Key:
    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def as_dict(obj: object) -> Body:
    """A lightkube object as the plain dict the rest of the operator works with."""
    return dict(obj.to_dict())  # type: ignore[attr-defined]


JOB_NAME_MAX = 60  # a DNS label: an Indexed Job's pods are named <job>-<index> as their hostname (<= 63)


def job_name(resource_name: str, resource_uid: str, run_id: str) -> str:
    """Unique per run and per resource incarnation, and always a valid DNS label of at most 60 characters.

    Any valid resource name works: dots become dashes and long names are cut (the uid digest keeps them
    apart). The digest makes the name unique across namespaces too, so it doubles as the run id the workers
    key their MongoDB documents by.
    """
    digest = hashlib.sha256(resource_uid.encode()).hexdigest()[:8]
    room = JOB_NAME_MAX - len(run_id) - len(digest) - 2
    prefix = resource_name.replace(".", "-")[: max(room, 0)].strip("-")
    return "-".join(part for part in (prefix, digest, run_id) if part)
