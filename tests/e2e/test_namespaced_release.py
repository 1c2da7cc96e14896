# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""The chart's default shape: an operator that manages only the namespaces it is given, with Roles there and
its Leases in its own namespace; nothing cluster-wide is granted and nothing elsewhere is touched. Then
`helm uninstall`, which leaves the CRDs, every DataAudit and AnalyticsJob, their Jobs and Secrets in place.

The suite's own (cluster-wide) operator is paused meanwhile, so this release's operator is the only actor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Pod, Secret

from tests.conftest import wait_for
from tests.e2e.conftest import (
    CHART,
    RELEASE_NAMESPACE,
    CandleSource,
    candle_source,
    chart_image,
    finished_run,
    operator_deployment,
    render,
    resource_manifest,
    restricted_namespace,
    run_tool,
)
from tests.fixtures.audit import AuditLog
from tests.fixtures.kube import as_dict, name_of
from tests.fixtures.rbac import covers, granted, used

DataAudit = create_namespaced_resource("datamanager.petrosa.io", "v1alpha1", "DataAudit", "dataaudits")
AnalyticsJob = create_namespaced_resource(
    "datamanager.petrosa.io", "v1alpha1", "AnalyticsJob", "analyticsjobs"
)
pytestmark = pytest.mark.usefixtures("operator_release")
RELEASE = "dm-ns"
SYSTEM = "dm-ns-system"
USER = f"system:serviceaccount:{SYSTEM}:{RELEASE}-datamanager"
KINDS = {"DataAudit": DataAudit, "AnalyticsJob": AnalyticsJob}


@dataclass
class Setup:
    watched: list[str]
    unwatched: str
    values: list[str]
    source: CandleSource
    audit_mark: int
    outcomes: dict[tuple[str, str, str], dict[str, Any]]  # (kind, namespace, name) -> status when finished


def our_crds(kube: Client) -> dict[str, str | None]:
    crds = kube.list(CustomResourceDefinition)
    return {name_of(crd): crd.metadata.uid for crd in crds if name_of(crd).endswith("datamanager.petrosa.io")}


def pause_suite_operator(kube: Client, replicas: int) -> None:
    name = name_of(operator_deployment(kube))
    kube.patch(Deployment, name, {"spec": {"replicas": replicas}}, namespace=RELEASE_NAMESPACE)

    def settled() -> bool:
        pods = list(
            kube.list(Pod, namespace=RELEASE_NAMESPACE, labels={"app.kubernetes.io/component": "operator"})
        )
        if replicas == 0:
            return not pods
        status = operator_deployment(kube).status
        return bool(status and status.readyReplicas == replicas and status.updatedReplicas == replicas)

    # terminating replicas stop acting only when they are gone (their Leases are theirs until then)
    wait_for(settled, 180, f"the suite's operator at {replicas} replicas")


@pytest.fixture(scope="module")
def setup(kube: Client, rig_env: dict[str, str]) -> Iterator[Setup]:
    suffix = uuid.uuid4().hex[:6]
    watched, unwatched = [f"nsa-{suffix}", f"nsb-{suffix}"], f"nsc-{suffix}"
    values = [
        "--set",
        "consumer.enabled=false",
        "--set",
        "operator.replicas=1",
        "--set",
        "operator.leaseSeconds=10",
        "--set",
        f"rbac.watchNamespaces={{{','.join(watched)}}}",
    ]
    with ExitStack() as stack:
        for name in (SYSTEM, *watched, unwatched):
            restricted_namespace(kube, name)
            stack.callback(kube.delete, Namespace, name)
        replicas = operator_deployment(kube).spec.replicas or 2
        stack.callback(pause_suite_operator, kube, replicas)  # first: a pause that times out is undone too
        pause_suite_operator(kube, 0)
        source = stack.enter_context(candle_source(kube, watched[0], rig_env))
        for namespace in (watched[1], unwatched):
            for secret, key in (("extractor-mysql", "dsn"), ("datamanager-mongodb", "uri")):
                value = {"dsn": "mysql://u:p@db.invalid:3306/x", "uri": rig_env["RIG_MONGODB_URI"]}[key]
                kube.create(
                    Secret(metadata=ObjectMeta(name=secret), stringData={key: value}), namespace=namespace
                )
        mark = AuditLog(rig_env["RIG_AUDIT_LOG"]).mark()
        run_tool(
            rig_env,
            "helm",
            "install",
            RELEASE,
            str(CHART),
            "-n",
            SYSTEM,
            *values,
            *chart_image(rig_env),
            "--wait",
            "--timeout",
            "120s",
        )
        stack.callback(
            run_tool,
            rig_env,
            "helm",
            "uninstall",
            RELEASE,
            "-n",
            SYSTEM,
            "--wait",
            "--timeout",
            "60s",
            check=False,
        )
        yield Setup(watched, unwatched, values, source, mark, {})


def test_a_namespaced_operator_runs_what_it_manages_with_roles_only(
    kube: Client, rig_env: dict[str, str], setup: Setup
) -> None:
    (home, other), source = setup.watched, setup.source
    created = [
        ("DataAudit", home, "audit", resource_manifest("DataAudit", "audit", source)),
        ("AnalyticsJob", home, "analytics", resource_manifest("AnalyticsJob", "analytics", source)),
        (
            "DataAudit",
            other,
            "unreachable",
            resource_manifest("DataAudit", "unreachable", source, job={"backoffLimit": 0}),
        ),
        ("DataAudit", setup.unwatched, "ignored", resource_manifest("DataAudit", "ignored", source)),
    ]
    for kind, namespace, _, manifest in created:
        kube.create(KINDS[kind].from_dict(manifest), namespace=namespace)
    for kind, namespace, name, _ in created[:3]:

        def done(kind: str = kind, namespace: str = namespace, name: str = name) -> dict[str, Any] | None:
            return finished_run(kube, KINDS[kind], name, namespace)

        setup.outcomes[(kind, namespace, name)] = wait_for(done, 180, f"{kind} {namespace}/{name}")
    assert setup.outcomes[("DataAudit", home, "audit")]["lastRun"]["outcome"] == "Succeeded"
    assert setup.outcomes[("AnalyticsJob", home, "analytics")]["lastRun"]["outcome"] == "Succeeded"
    assert setup.outcomes[("DataAudit", other, "unreachable")]["lastRun"]["reason"] == "SourceUnavailable"

    # a namespace it was not given: not even read
    assert not kube.get(DataAudit, "ignored", namespace=setup.unwatched).status
    assert not list(kube.list(Job, namespace=setup.unwatched))

    grants = granted(render(rig_env, RELEASE, SYSTEM, *setup.values), f"{RELEASE}-datamanager", SYSTEM)
    assert {grant.scope for grant in grants} == {"release", "watched"}, "no ClusterRole is bound"
    entries = [e for e in AuditLog(rig_env["RIG_AUDIT_LOG"]).entries(setup.audit_mark) if e.user == USER]
    assert entries, "no request of the namespaced operator in the audit log"
    touched = {e.namespace for e in entries if e.resource}
    assert touched <= {SYSTEM, *setup.watched}, f"requests outside its namespaces: {touched}"
    uses = used(entries, USER, SYSTEM)
    ungranted = sorted(use for use in uses if not any(covers(grant, use) for grant in grants))
    assert not ungranted, f"requests the Roles do not grant: {', '.join(map(str, ungranted))}"
    leases = {use.scope for use in uses if use.resource == "leases"}
    assert leases == {"release"}, "Leases live in the operator's namespace only"


def test_uninstall_leaves_the_crds_every_resource_its_jobs_and_secrets_in_place(
    kube: Client, rig_env: dict[str, str], setup: Setup
) -> None:
    if not setup.outcomes:
        pytest.fail("needs the runs of test_a_namespaced_operator_runs_what_it_manages_with_roles_only")
    crds = {
        name_of(crd): crd.metadata.uid
        for crd in kube.list(CustomResourceDefinition)
        if "petrosa" in name_of(crd)
    }
    jobs = {ns: {name_of(job) for job in kube.list(Job, namespace=ns)} for ns in setup.watched}
    assert all(jobs.values()), jobs
    uninstall = run_tool(rig_env, "helm", "uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout", "120s")
    assert "uninstalled" in uninstall.stdout
    wait_for(lambda: not list(kube.list(Pod, namespace=SYSTEM)), 60, "the release's operator pods to go")

    after = {
        name_of(crd): crd.metadata.uid
        for crd in kube.list(CustomResourceDefinition)
        if "petrosa" in name_of(crd)
    }
    assert after == crds, "the CRDs are the same objects"
    for (kind, namespace, name), status in setup.outcomes.items():
        kept = as_dict(kube.get(KINDS[kind], name, namespace=namespace))
        assert not kept["metadata"].get("deletionTimestamp"), f"{kind} {name} is being deleted"
        assert kept["status"]["lastRun"] == status["lastRun"], "its status is as the operator left it"
    for namespace, names in jobs.items():
        assert {name_of(job) for job in kube.list(Job, namespace=namespace)} >= names
    for namespace in setup.watched:
        try:
            kube.get(Secret, "extractor-mysql", namespace=namespace)
        except ApiError as exc:
            pytest.fail(f"the Secret in {namespace} is gone: {exc}")
