# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Real tenants: whoever may create a DataAudit gains nothing through the operator they did not already have.

Alice holds a real ServiceAccount token with exactly two rights in team-a: create DataAudits, and get one
Secret (`alice-db`). Every attempt to reach further is refused at admission by the chart's
ValidatingAdmissionPolicy, with a message that says why and what to do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.admissionregistration_v1 import ValidatingAdmissionPolicyBinding
from lightkube.resources.authorization_v1 import SubjectAccessReview
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Namespace, Pod, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole, Role, RoleBinding

from tests.conftest import RESTRICTED, wait_for
from tests.e2e.conftest import RELEASE, CandleSource, finished_run, resource_manifest
from tests.fixtures.audit import AuditLog
from tests.fixtures.kube import as_dict, name_of, resource

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
pytestmark = pytest.mark.usefixtures("operator_release")
POLICY = f"{RELEASE}-datamanager-resources"
FOREIGN_IMAGE = "evil.example/miner:1"


@dataclass(frozen=True)
class Tenancy:
    team_a: str
    team_b: str
    alice: Client
    user: str
    candles: CandleSource


def grant(kube: Client, namespace: str, name: str, rules: list[PolicyRule], subject: Subject) -> None:
    kube.create(Role(metadata=ObjectMeta(name=name), rules=rules), namespace=namespace)
    kube.create(
        RoleBinding(
            metadata=ObjectMeta(name=name),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name=name),
            subjects=[subject],
        ),
        namespace=namespace,
    )


@pytest.fixture
def tenancy(
    kube: Client,
    namespace: str,
    candles: CandleSource,
    as_service_account: Callable[[str, str], Client],
) -> Iterator[Tenancy]:
    """team-a (the test's namespace, with candles) and team-b; alice may create DataAudits in team-a and get
    its Secret alice-db (the DSN and the URI), nothing else."""
    team_b = f"team-b-{uuid.uuid4().hex[:6]}"
    kube.create(Namespace(metadata=ObjectMeta(name=team_b, labels=RESTRICTED)))
    try:
        values = {
            key: kube.get(Secret, name, namespace=namespace).data[key]
            for name, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri"))
        }
        kube.create(Secret(metadata=ObjectMeta(name="alice-db"), data=values), namespace=namespace)
        team_db = {"dsn": "mysql://b:pw@db.invalid/b", "uri": "mongodb://db.invalid/"}
        for team in (namespace, team_b):
            kube.create(Secret(metadata=ObjectMeta(name="team-db"), stringData=team_db), namespace=team)
        kube.create(ServiceAccount(metadata=ObjectMeta(name="alice")), namespace=namespace)
        alice = Subject(kind="ServiceAccount", name="alice", namespace=namespace)
        grant(
            kube,
            namespace,
            "dataaudit-author",
            [PolicyRule(apiGroups=["datamanager.petrosa.io"], resources=["dataaudits"], verbs=["create"])],
            alice,
        )
        grant(
            kube,
            namespace,
            "alice-db-reader",
            [PolicyRule(apiGroups=[""], resources=["secrets"], resourceNames=["alice-db"], verbs=["get"])],
            alice,
        )
        yield Tenancy(
            namespace,
            team_b,
            as_service_account(namespace, "alice"),
            f"system:serviceaccount:{namespace}:alice",
            candles,
        )
    finally:
        kube.delete(Namespace, team_b)


def alices(tenancy: Tenancy, name: str, **spec: Any) -> Any:
    """A DataAudit that reads and writes with alice-db, overridden by ``spec``."""
    manifest = resource_manifest("DataAudit", name, tenancy.candles, **spec)
    manifest["spec"]["source"]["dsnSecretRef"]["name"] = "alice-db"
    manifest["spec"]["sink"]["uriSecretRef"]["name"] = "alice-db"
    return DataAudit.from_dict(manifest)


def refused(tenancy: Tenancy, body: Any) -> str:
    """Alice's create is refused at admission by the chart's policy; its message, and nothing was stored."""
    with pytest.raises(ApiError) as caught:
        tenancy.alice.create(body, namespace=tenancy.team_a)
    message = str(caught.value.status.message)
    assert caught.value.status.code in (403, 422), message
    assert f"ValidatingAdmissionPolicy '{POLICY}'" in message, message
    return message.partition("denied request: ")[2]


def test_alice_runs_an_audit_with_the_secret_she_may_read(kube: Client, tenancy: Tenancy) -> None:
    tenancy.alice.create(alices(tenancy, "mine"), namespace=tenancy.team_a)
    status = wait_for(lambda: finished_run(kube, DataAudit, "mine", tenancy.team_a), 120, "alice's run")
    assert status["lastRun"]["outcome"] == "Succeeded", status


@pytest.mark.parametrize(
    ("field", "secret"),
    [
        ("source.dsnSecretRef", "extractor-mysql"),
        ("sink.uriSecretRef", "datamanager-mongodb"),
        ("source.dsnSecretRef", "not-created-yet"),
    ],
)
def test_alice_cannot_reference_a_secret_she_cannot_read(
    kube: Client, tenancy: Tenancy, field: str, secret: str
) -> None:
    body = alices(tenancy, "theirs")
    part, ref = field.split(".")
    body.spec[part][ref]["name"] = secret
    message = refused(tenancy, body)
    assert message == (
        f'spec.{field} names Secret "{secret}", which {tenancy.user} may not get in namespace '
        f"{tenancy.team_a}: a DataAudit or AnalyticsJob may reference only Secrets its author can read. "
        "Reference one you can read, or ask for get on this one."
    )
    with pytest.raises(ApiError, match="not found"):
        kube.get(DataAudit, "theirs", namespace=tenancy.team_a)


def test_alice_cannot_run_a_foreign_image(tenancy: Tenancy) -> None:
    message = refused(tenancy, alices(tenancy, "miner", job={"image": FOREIGN_IMAGE}))
    assert message.startswith(f'spec.job.image "{FOREIGN_IMAGE}" is not an allowed worker image (allowed: ')
    assert "unpullable.invalid/*" in message
    assert "Leave spec.job.image out to run the default worker image" in message
    # an image on the list (a prefix entry of the suite's release) is fine
    tenancy.alice.create(
        alices(tenancy, "listed", job={"image": "unpullable.invalid/anything:1"}), namespace=tenancy.team_a
    )


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (
            {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}},
            "spec.job.nodeSelector may not use",
        ),
        (
            {"tolerations": [{"operator": "Exists"}]},
            "spec.job.tolerations may not tolerate any taint here. Remove them",
        ),
        (
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}},
            "spec.job.affinity is not allowed here",
        ),
        ({"priorityClassName": "system-node-critical"}, 'spec.job.priorityClassName "system-node-critical"'),
    ],
    ids=["nodeSelector", "tolerations", "affinity", "priorityClassName"],
)
def test_alice_cannot_place_her_worker_where_the_chart_does_not_allow(
    tenancy: Tenancy, job: dict[str, Any], expected: str
) -> None:
    message = refused(tenancy, alices(tenancy, "placed", job=job))
    assert message.startswith(expected), message
    assert "ask the platform team to allow" in message
    assert "chart value admission.placement." in message


def test_alice_reads_nothing_of_team_b_through_the_operator(kube: Client, tenancy: Tenancy) -> None:
    # directly: nothing at all
    for res in (DataAudit, Secret, Job, Pod):
        with pytest.raises(ApiError) as denied:
            list(tenancy.alice.list(res, namespace=tenancy.team_b))
        assert denied.value.status.code == 403
    with pytest.raises(ApiError) as denied:
        tenancy.alice.create(alices(tenancy, "twin"), namespace=tenancy.team_b)
    assert denied.value.status.code == 403
    # a Secret reference has no namespace: one naming team-b's is read in team-a, where alice may not get it
    body = alices(tenancy, "reach")
    body.spec["source"]["dsnSecretRef"] = {"name": "team-db", "key": "dsn", "namespace": tenancy.team_b}
    assert refused(tenancy, body).startswith('spec.source.dsnSecretRef names Secret "team-db"')

    # through the operator: a twin of the same name in team-b changes nothing for alice's, and hers shows
    # nothing of team-b
    twin_b = resource_manifest("DataAudit", "twin", tenancy.candles, job={"backoffLimit": 0})
    twin_b["spec"]["source"]["dsnSecretRef"]["name"] = "team-db"
    twin_b["spec"]["sink"]["uriSecretRef"]["name"] = "team-db"
    kube.create(DataAudit.from_dict(twin_b), namespace=tenancy.team_b)
    tenancy.alice.create(alices(tenancy, "twin"), namespace=tenancy.team_a)
    mine = wait_for(lambda: finished_run(kube, DataAudit, "twin", tenancy.team_a), 120, "alice's twin")
    theirs = wait_for(lambda: finished_run(kube, DataAudit, "twin", tenancy.team_b), 120, "team-b's twin")
    assert mine["lastRun"]["outcome"] == "Succeeded", mine
    assert theirs["lastRun"]["outcome"] == "Failed", theirs
    assert mine["lastRun"]["jobName"] != theirs["lastRun"]["jobName"]
    seen = json.dumps(mine) + json.dumps(
        [
            as_dict(e)
            for e in kube.list(Event, namespace=tenancy.team_a, fields={"involvedObject.name": "twin"})
        ]
    )
    assert tenancy.team_b not in seen
    assert theirs["lastRun"]["jobName"] not in seen
    (job,) = kube.list(Job, namespace=tenancy.team_a, labels={"datamanager.petrosa.io/resource": "twin"})
    refs = {e.valueFrom.secretKeyRef.name for e in job.spec.template.spec.containers[0].env if e.valueFrom}
    assert refs == {"alice-db"}


def test_a_resource_forced_in_while_the_policy_is_unbound_fails_its_run_and_creates_no_pod(
    kube: Client, tenancy: Tenancy, rig_env: dict[str, str]
) -> None:
    """Defence in depth: the operator checks the image itself. (Needs the operator's ImageNotAllowed.)"""
    binding = as_dict(kube.get(ValidatingAdmissionPolicyBinding, POLICY))
    kept = {"apiVersion": binding["apiVersion"], "kind": binding["kind"], "spec": binding["spec"]}
    kept["metadata"] = {
        k: binding["metadata"][k] for k in ("name", "labels", "annotations") if k in binding["metadata"]
    }
    audit = AuditLog(rig_env["RIG_AUDIT_LOG"])
    kube.delete(ValidatingAdmissionPolicyBinding, POLICY)
    try:
        forced = alices(tenancy, "forced", job={"image": FOREIGN_IMAGE})

        def admitted() -> bool:  # the API server's policy cache follows the deletion within moments
            try:
                tenancy.alice.create(forced, namespace=tenancy.team_a, dry_run=True)
            except ApiError:
                return False
            return True

        wait_for(admitted, 30, "the unbound policy to stop refusing")
        mark = audit.mark()
        tenancy.alice.create(forced, namespace=tenancy.team_a)
        status = wait_for(
            lambda: finished_run(kube, DataAudit, "forced", tenancy.team_a), 60, "the run to fail"
        )
    finally:
        kube.create(resource(ValidatingAdmissionPolicyBinding, kept))
    assert status["lastRun"]["outcome"] == "Failed"
    assert status["lastRun"]["reason"] == "ImageNotAllowed"
    assert FOREIGN_IMAGE in status["lastRun"]["message"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "ImageNotAllowed")
    assert audit.job_creations(tenancy.team_a, mark) == []
    assert not list(
        kube.list(Job, namespace=tenancy.team_a, labels={"datamanager.petrosa.io/resource": "forced"})
    )
    assert not [name_of(p) for p in kube.list(Pod, namespace=tenancy.team_a) if "forced" in name_of(p)]


def can(kube: Client, user: str, namespace: str, verb: str, plural: str, subresource: str = "") -> bool:
    review = resource(
        SubjectAccessReview,
        {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": "datamanager.petrosa.io",
                    "resource": plural,
                    "subresource": subresource,
                },
            }
        },
    )
    return bool(kube.create(review).status.allowed)


def test_namespace_editors_and_viewers_get_the_two_kinds_and_nothing_more(
    kube: Client, namespace: str
) -> None:
    for role in ("edit", "view"):
        kube.create(ServiceAccount(metadata=ObjectMeta(name=role)), namespace=namespace)
        kube.create(
            RoleBinding(
                metadata=ObjectMeta(name=role),
                roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="ClusterRole", name=role),
                subjects=[Subject(kind="ServiceAccount", name=role, namespace=namespace)],
            ),
            namespace=namespace,
        )
    editor, viewer = (f"system:serviceaccount:{namespace}:{role}" for role in ("edit", "view"))
    kinds = ("dataaudits", "analyticsjobs")
    writes = ("create", "update", "patch", "delete", "deletecollection")
    reads = ("get", "list", "watch")

    def aggregated() -> bool:  # the aggregation controller folds the chart's roles into edit and view
        return all(can(kube, editor, namespace, v, k) for v in writes for k in kinds) and all(
            can(kube, viewer, namespace, v, k) for v in reads for k in kinds
        )

    wait_for(aggregated, 30, "edit and view to include the two kinds")
    for kind in kinds:
        assert not any(can(kube, viewer, namespace, verb, kind) for verb in writes)
        for user in (editor, viewer):  # status is the operator's
            assert not can(kube, user, namespace, "patch", kind, "status")
            assert not can(kube, user, namespace, "update", kind, "status")
    # and the chart's aggregated roles hold exactly that, nothing more
    for role, rules in {
        "edit": [{"apiGroups": ["datamanager.petrosa.io"], "resources": list(kinds), "verbs": list(writes)}],
        "view": [
            {
                "apiGroups": ["datamanager.petrosa.io"],
                "resources": [*kinds, *(f"{k}/status" for k in kinds)],
                "verbs": list(reads),
            }
        ],
    }.items():
        live = as_dict(kube.get(ClusterRole, f"{RELEASE}-datamanager-{role}"))
        assert live["rules"] == rules
        assert live["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"
