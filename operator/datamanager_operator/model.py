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
LABEL_RESOURCE = f"{GROUP}/resource"
LABEL_RESOURCE_UID = f"{GROUP}/resource-uid"
LABEL_RUN_ID = f"{GROUP}/run-id"
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


def key_of(body: Body) -> Key:
    meta = body["metadata"]
    return Key(body["kind"], meta["namespace"], meta["name"])


def job_name(resource_name: str, resource_uid: str, run_id: str) -> str:
    """Deterministic per run and per resource incarnation, within the 63 characters a label value allows.

    The uid digest makes it unique across namespaces too, so it doubles as the run id the workers key their
    MongoDB documents by.
    """
    digest = hashlib.sha256(resource_uid.encode()).hexdigest()[:8]
    return f"{resource_name[: 63 - len(run_id) - 10].rstrip('-')}-{digest}-{run_id}"
