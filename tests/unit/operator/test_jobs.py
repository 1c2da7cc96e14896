"""The worker's environment in a run's Job: every connection by Secret reference, never a value; the NATS
server of an audit's backfill requests only when the audit publishes them (the rig runs them:
tests/e2e/test_backfill.py)."""

from __future__ import annotations

from typing import Any

import pytest

from datamanager.api import AnalyticsJobSpec, DataAuditSpec
from datamanager.api.common import RunSpecBase
from datamanager.api.status import RunRef
from datamanager.contract import ENV_MONGODB_URI, ENV_MYSQL_DSN, ENV_NATS_URL, ENV_SPEC
from datamanager_operator.jobs import build_job
from datamanager_operator.settings import OperatorSettings

META = {"name": "nightly", "namespace": "markets", "uid": "0f5e"}
RUN = RunRef(id="g1", number=1, uid="r1", job_name="nightly-abc-g1", trigger="Created", generation=1)
BASE: dict[str, Any] = {
    "source": {"dsnSecretRef": {"name": "extractor-mysql", "key": "dsn"}},
    "sink": {"uriSecretRef": {"name": "datamanager-mongodb", "key": "uri"}},
    "symbols": ["BTCUSDT"],
    "intervals": ["1h"],
}
NATS_REF = {"name": "market-nats", "key": "url"}


def env_of(kind: str, spec: RunSpecBase) -> dict[str, Any]:
    job = build_job(kind, META, spec, RUN, OperatorSettings(namespace="system"))  # type: ignore[arg-type]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), names
    return {e["name"]: e for e in container["env"]}


def audit(**spec: Any) -> DataAuditSpec:
    return DataAuditSpec.model_validate({**BASE, **spec})


def test_a_publishing_audit_gets_the_nats_url_from_its_secret_by_reference() -> None:
    env = env_of("DataAudit", audit(backfillSubject="binance.backfill", natsUrlSecretRef=NATS_REF))
    assert env[ENV_NATS_URL] == {"name": ENV_NATS_URL, "valueFrom": {"secretKeyRef": NATS_REF}}
    assert env[ENV_MYSQL_DSN]["valueFrom"] == {"secretKeyRef": {"name": "extractor-mysql", "key": "dsn"}}
    assert env[ENV_MONGODB_URI]["valueFrom"] == {
        "secretKeyRef": {"name": "datamanager-mongodb", "key": "uri"}
    }
    # the worker reads the subject from the spec it is given
    assert '"backfillSubject":"binance.backfill"' in env[ENV_SPEC]["value"]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"natsUrlSecretRef": NATS_REF},  # not publishing: the Secret is not needed, so not required to exist
        {"backfillSubject": "", "natsUrlSecretRef": NATS_REF},  # an empty subject publishes nothing
        {"backfillSubject": "binance.backfill"},  # stored before the CRD required the reference
    ],
    ids=["no-backfill", "reference-only", "empty-subject", "subject-only"],
)
def test_an_audit_that_cannot_publish_gets_no_nats_url(spec: dict[str, Any]) -> None:
    env = env_of("DataAudit", audit(**spec))
    assert ENV_NATS_URL not in env
    assert {ENV_MYSQL_DSN, ENV_MONGODB_URI} <= set(env)


def test_an_analytics_job_gets_no_nats_url() -> None:
    env = env_of("AnalyticsJob", AnalyticsJobSpec.model_validate(BASE))
    assert ENV_NATS_URL not in env
