# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Real tenants: whoever may create a DataAudit gains nothing through the operator they did not already have.

Alice holds a real ServiceAccount token with exactly two rights in team-a: create DataAudits, and get one
Secret (`alice-db`). Every attempt to reach further is refused at admission by the chart's
ValidatingAdmissionPolicy, with a message that says why and what to do.
"""

from __future__ import annotations

import functools
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
from lightkube.resources.admissionregistration_v1 import (
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
)
from lightkube.resources.authorization_v1 import SubjectAccessReview
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Namespace, Pod, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole, Role, RoleBinding
from lightkube.types import PatchType

from tests.conftest import RESTRICTED, wait_for
from tests.e2e.conftest import RELEASE, CandleSource, finished_run, render, resource_manifest
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


def denied(request: Callable[[], object], policy: str = POLICY) -> str:
    """The request is refused at admission by the chart's policy; its message."""
    with pytest.raises(ApiError) as caught:
        request()
    message = str(caught.value.status.message)
    assert caught.value.status.code in (403, 422), message
    assert f"ValidatingAdmissionPolicy '{policy}'" in message, message
    return message.partition("denied request: ")[2]


def refused(tenancy: Tenancy, body: Any) -> str:
    """Alice's create is refused at admission by the chart's policy; its message."""
    return denied(lambda: tenancy.alice.create(body, namespace=tenancy.team_a))


def secret_refusal(field: str, secret: str, user: str, namespace: str) -> str:
    """The policy's message when ``user`` names in ``field`` a Secret they may not get."""
    return (
        f'spec.{field} names Secret "{secret}", which {user} may not get in namespace {namespace}: a '
        "DataAudit or AnalyticsJob may reference only Secrets its author can read. Reference one you can "
        "read, or ask for get on this one."
    )


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
        ("natsUrlSecretRef", "market-nats"),
    ],
)
def test_alice_cannot_reference_a_secret_she_cannot_read(
    kube: Client, tenancy: Tenancy, field: str, secret: str
) -> None:
    body = alices(tenancy, "theirs")
    if field == "natsUrlSecretRef":
        body.spec.update(backfillSubject="backfill", natsUrlSecretRef={"name": secret, "key": "url"})
    else:
        part, ref = field.split(".")
        body.spec[part][ref]["name"] = secret
    assert refused(tenancy, body) == secret_refusal(field, secret, tenancy.user, tenancy.team_a)
    with pytest.raises(ApiError, match="not found"):
        kube.get(DataAudit, "theirs", namespace=tenancy.team_a)


def test_the_nats_secret_is_checked_on_an_update_only_when_it_changes(kube: Client, tenancy: Tenancy) -> None:
    """An audit whose NATS Secret (team-db) alice may not read, written by the admin: alice, who may patch
    DataAudits, may change its schedule, and point it at her own Secret, but not at another key of team-db."""
    grant(
        kube,
        tenancy.team_a,
        "dataaudit-patcher",
        [PolicyRule(apiGroups=["datamanager.petrosa.io"], resources=["dataaudits"], verbs=["patch"])],
        Subject(kind="ServiceAccount", name="alice", namespace=tenancy.team_a),
    )
    body = alices(tenancy, "shared", backfillSubject="backfill", suspend=True)
    body.spec["natsUrlSecretRef"] = {"name": "team-db", "key": "url"}
    kube.create(body, namespace=tenancy.team_a)

    def patch(spec: dict[str, Any]) -> str | None:
        try:
            tenancy.alice.patch(
                DataAudit, "shared", {"spec": spec}, namespace=tenancy.team_a, patch_type=PatchType.MERGE
            )
        except ApiError as exc:
            return str(exc.status.message).partition("denied request: ")[2] or str(exc.status.message)
        return None

    # the RoleBinding reaches the authorizer's cache within moments
    wait_for(lambda: patch({"schedule": "0 * * * *"}) is None, 30, "alice's patch of the schedule")
    assert patch({"natsUrlSecretRef": {"name": "team-db", "key": "other"}}) == (
        f'spec.natsUrlSecretRef names Secret "team-db", which {tenancy.user} may not get in namespace '
        f"{tenancy.team_a}: a DataAudit or AnalyticsJob may reference only Secrets its author can read. "
        "Reference one you can read, or ask for get on this one."
    )
    assert patch({"natsUrlSecretRef": {"name": "alice-db", "key": "url"}}) is None
    stored = kube.get(DataAudit, "shared", namespace=tenancy.team_a).spec
    assert (stored["schedule"], stored["natsUrlSecretRef"]["name"]) == ("0 * * * *", "alice-db")


def test_alice_cannot_run_a_foreign_image(tenancy: Tenancy) -> None:
    message = refused(tenancy, alices(tenancy, "miner", job={"image": FOREIGN_IMAGE}))
    assert message.startswith(f'spec.job.image "{FOREIGN_IMAGE}" is not an allowed worker image (allowed: ')
    assert "unpullable.invalid/*" in message
    assert "Leave spec.job.image out to run the default worker image" in message
    # an image on the list (a prefix entry of the suite's release) is fine
    tenancy.alice.create(
        alices(tenancy, "listed", job={"image": "unpullable.invalid/anything:1"}), namespace=tenancy.team_a
    )


# placement the suite's release does not allow, and the start of the policy's message for it
PLACEMENT = pytest.mark.parametrize(
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


@PLACEMENT
def test_alice_cannot_place_her_worker_where_the_chart_does_not_allow(
    tenancy: Tenancy, job: dict[str, Any], expected: str
) -> None:
    message = refused(tenancy, alices(tenancy, "placed", job=job))
    assert message.startswith(expected), message
    assert "ask the platform team to allow" in message
    assert "chart value admission.placement." in message


# ---------------------------------------------------------------- updates: only what changed is checked


@dataclass(frozen=True)
class Editors:
    """alice may also get and patch DataAudits in team-a; bob may get and patch them, and get no Secret."""

    alice: Client
    bob: Client
    bob_user: str


@pytest.fixture
def editors(kube: Client, tenancy: Tenancy, as_service_account: Callable[[str, str], Client]) -> Editors:
    team_a = tenancy.team_a
    kube.create(ServiceAccount(metadata=ObjectMeta(name="bob")), namespace=team_a)
    edit = [
        PolicyRule(
            apiGroups=["datamanager.petrosa.io"], resources=["dataaudits"], verbs=["get", "patch", "update"]
        )
    ]
    for who in ("alice", "bob"):
        grant(kube, team_a, f"{who}-edits", edit, Subject(kind="ServiceAccount", name=who, namespace=team_a))
    bob = f"system:serviceaccount:{team_a}:bob"
    wait_for(  # the authorizer's cache follows new bindings within moments
        lambda: all(can(kube, user, team_a, "patch", "dataaudits") for user in (tenancy.user, bob)),
        30,
        "alice and bob to be allowed to patch DataAudits",
    )
    assert not can(kube, bob, team_a, "get", "secrets", group="")
    return Editors(tenancy.alice, as_service_account(team_a, "bob"), bob)


def stored(tenancy: Tenancy, name: str, **spec: Any) -> None:
    """Alice's DataAudit, created by her and suspended: no run costs the test time (a run-now is ignored)."""
    tenancy.alice.create(alices(tenancy, name, suspend=True, **spec), namespace=tenancy.team_a)


def update(client: Client, tenancy: Tenancy, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch of a DataAudit of team-a, by ``client``; the stored resource."""
    return as_dict(client.patch(DataAudit, name, patch, namespace=tenancy.team_a, patch_type=PatchType.MERGE))


@pytest.mark.parametrize(
    ("field", "secret"),
    [("source.dsnSecretRef", "extractor-mysql"), ("sink.uriSecretRef", "datamanager-mongodb")],
)
def test_alice_cannot_switch_her_resource_to_a_secret_she_cannot_read(
    kube: Client, tenancy: Tenancy, editors: Editors, field: str, secret: str
) -> None:
    stored(tenancy, "switched")
    part, ref = field.split(".")
    message = denied(
        lambda: update(editors.alice, tenancy, "switched", {"spec": {part: {ref: {"name": secret}}}})
    )
    assert message == secret_refusal(field, secret, tenancy.user, tenancy.team_a)
    kept = as_dict(kube.get(DataAudit, "switched", namespace=tenancy.team_a))
    assert kept["spec"][part][ref]["name"] == "alice-db"


def test_alice_cannot_switch_her_resource_to_a_foreign_image(
    kube: Client, tenancy: Tenancy, editors: Editors
) -> None:
    stored(tenancy, "reimaged", job={"image": "unpullable.invalid/worker:1"})
    message = denied(
        lambda: update(editors.alice, tenancy, "reimaged", {"spec": {"job": {"image": FOREIGN_IMAGE}}})
    )
    assert message.startswith(f'spec.job.image "{FOREIGN_IMAGE}" is not an allowed worker image (allowed: ')
    # the refusal is the image's, not the update's: another listed one is fine
    listed = {"spec": {"job": {"image": "unpullable.invalid/worker:2"}}}
    assert update(editors.alice, tenancy, "reimaged", listed)["spec"]["job"]["image"].endswith(":2")


@PLACEMENT
def test_alice_cannot_add_placement_the_chart_does_not_allow(
    kube: Client, tenancy: Tenancy, editors: Editors, job: dict[str, Any], expected: str
) -> None:
    stored(tenancy, "moved")
    message = denied(lambda: update(editors.alice, tenancy, "moved", {"spec": {"job": job}}))
    assert message.startswith(expected), message
    kept = as_dict(kube.get(DataAudit, "moved", namespace=tenancy.team_a))["spec"]["job"]
    assert not any(kept.get(key) for key in job), kept  # still the defaults: {}, [] or unset


RUN_NOW = "datamanager.petrosa.io/run-now"


def test_who_may_only_patch_needs_no_secret_access_until_they_change_a_secret_reference(
    kube: Client, tenancy: Tenancy, editors: Editors
) -> None:
    """bob may read no Secret: he may still trigger and retune alice's resource, which keeps her Secrets; he
    may not change which Secret (or key) it reads."""
    stored(tenancy, "shared", job={"image": "unpullable.invalid/worker:1"})
    after = update(editors.bob, tenancy, "shared", {"metadata": {"annotations": {RUN_NOW: "1"}}})
    assert after["metadata"]["annotations"][RUN_NOW] == "1"
    after = update(editors.bob, tenancy, "shared", {"spec": {"symbols": ["BTCUSDT"], "window": "3d"}})
    assert (after["spec"]["symbols"], after["spec"]["window"]) == (["BTCUSDT"], "3d")
    # a change to either reference checks both (the policy's credentialsChanged), so the first Secret bob
    # may not get is named: the source's
    for patch in ({"source": {"dsnSecretRef": {"key": "uri"}}}, {"sink": {"uriSecretRef": {"key": "dsn"}}}):
        message = denied(functools.partial(update, editors.bob, tenancy, "shared", {"spec": patch}))
        assert message == secret_refusal("source.dsnSecretRef", "alice-db", editors.bob_user, tenancy.team_a)
    kept = as_dict(kube.get(DataAudit, "shared", namespace=tenancy.team_a))["spec"]
    assert (kept["source"]["dsnSecretRef"]["key"], kept["sink"]["uriSecretRef"]["key"]) == ("dsn", "uri")


def test_shrinking_the_allow_lists_does_not_freeze_existing_resources(
    kube: Client, tenancy: Tenancy, editors: Editors, open_policy: str, rig_env: dict[str, str]
) -> None:
    """A resource admitted under wider lists (a listed image and every kind of placement) keeps taking
    updates that do not touch them once the chart's lists shrink; what changes meets the new lists."""
    policy = f"{open_policy}-datamanager-resources"
    team_a = tenancy.team_a

    def probe(image: str) -> str | None:
        """The policy's refusal of a dry-run create with ``image``; None when admitted."""
        body = DataAudit.from_dict(
            resource_manifest("DataAudit", "probe", tenancy.candles, job={"image": image})
        )
        try:
            kube.create(body, namespace=team_a, dry_run=True)
        except ApiError as exc:
            return str(exc.status.message)
        return None

    wait_for(lambda: policy in (probe("registry.example/other:1") or ""), 30, "the open policy to apply")
    wait_for(lambda: probe("registry.example/dm:3") is None, 30, "the suite's policy to be unbound")
    placed = {
        "image": "registry.example/dm:2",
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "priorityClassName": "batch-low",
    }
    stored(tenancy, "placed", job=placed)

    # the platform team shrinks the lists: the same release rendered with the chart's defaults
    (narrow,) = [
        d
        for d in render(rig_env, open_policy, team_a, "--set", f"rbac.watchNamespaces={{{team_a}}}")
        if d["kind"] == "ValidatingAdmissionPolicy"
    ]
    kube.patch(ValidatingAdmissionPolicy, policy, {"spec": narrow["spec"]}, patch_type=PatchType.MERGE)
    wait_for(lambda: policy in (probe("registry.example/dm:3") or ""), 30, "the narrowed policy to apply")

    after = update(editors.bob, tenancy, "placed", {"metadata": {"annotations": {RUN_NOW: "1"}}})
    assert after["metadata"]["annotations"][RUN_NOW] == "1"
    after = update(editors.bob, tenancy, "placed", {"spec": {"symbols": ["BTCUSDT"]}})
    assert after["spec"]["symbols"] == ["BTCUSDT"]
    assert {key: after["spec"]["job"][key] for key in placed} == placed
    # what changes meets the new lists, each part on its own
    for job, expected in (
        ({"image": "registry.example/dm:3"}, 'spec.job.image "registry.example/dm:3" is not an allowed'),
        (
            {"nodeSelector": {"kubernetes.io/arch": "arm64"}},
            "spec.job.nodeSelector may not use kubernetes.io/arch",
        ),
        (
            {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
            "spec.job.tolerations may not tolerate",
        ),
        ({"affinity": {"podAntiAffinity": {}}}, "spec.job.affinity is not allowed here"),
        ({"priorityClassName": "batch-high"}, 'spec.job.priorityClassName "batch-high" is not allowed'),
    ):
        change = functools.partial(update, editors.bob, tenancy, "placed", {"spec": {"job": job}})
        message = denied(change, policy)
        assert message.startswith(expected), (job, message)


def test_alice_reads_nothing_of_team_b_through_the_operator(kube: Client, tenancy: Tenancy) -> None:
    # directly: nothing at all
    for res in (DataAudit, Secret, Job, Pod):
        with pytest.raises(ApiError) as caught:
            list(tenancy.alice.list(res, namespace=tenancy.team_b))
        assert caught.value.status.code == 403
    with pytest.raises(ApiError) as caught:
        tenancy.alice.create(alices(tenancy, "twin"), namespace=tenancy.team_b)
    assert caught.value.status.code == 403
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


def can(
    kube: Client,
    user: str,
    namespace: str,
    verb: str,
    plural: str,
    subresource: str = "",
    group: str = "datamanager.petrosa.io",
) -> bool:
    review = resource(
        SubjectAccessReview,
        {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
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
