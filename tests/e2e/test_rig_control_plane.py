# mypy: disable-error-code="union-attr, index"
# (every field of an API object is Optional; a None where a test expects a value fails it anyway)
"""Smoke tests proving the rig's control plane is the real thing: validation, RBAC, optimistic concurrency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import PatchType

from tests.conftest import wait_for
from tests.fixtures.kube import as_dict, resource

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.datamanager.io"},
    "spec": {
        "group": "smoke.datamanager.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}},
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}
Widget = create_namespaced_resource("smoke.datamanager.io", "v1", "Widget", "widgets")


@pytest.fixture(scope="module")
def widget_crd(kube: Client) -> Iterator[None]:
    kube.apply(resource(CustomResourceDefinition, WIDGET_CRD), force=True)
    wait_for(lambda: _established(kube), timeout=30, what="the Widget CRD to be established")
    yield
    kube.delete(CustomResourceDefinition, WIDGET_CRD["metadata"]["name"])


def _established(kube: Client) -> bool:
    crd = kube.get(CustomResourceDefinition, WIDGET_CRD["metadata"]["name"])
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


def test_apiserver_reports_the_pinned_version(kube: Client) -> None:
    version = kube._client._client.get("/version").json()  # the raw /version endpoint
    assert version["gitVersion"] == "v1.36.3"


@pytest.mark.usefixtures("widget_crd")
def test_crd_schema_rejects_invalid_objects_and_status_patch_leaves_spec(
    kube: Client, namespace: str
) -> None:
    with pytest.raises(ApiError) as rejected:
        kube.create(Widget(metadata=ObjectMeta(name="bad"), spec={"size": 99}), namespace=namespace)
    assert rejected.value.status.code == 422
    assert "spec.size" in str(rejected.value.status.message)

    kube.create(Widget(metadata=ObjectMeta(name="good"), spec={"size": 3}), namespace=namespace)
    kube.patch(
        Widget.Status,
        "good",
        {"spec": {"size": 7}, "status": {"phase": "Done"}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    widget = as_dict(kube.get(Widget, "good", namespace=namespace))
    assert widget["status"] == {"phase": "Done"}
    assert widget["spec"] == {"size": 3}, "the status subresource must ignore spec changes"


def test_rbac_denies_a_bare_service_account_and_allows_one_with_a_role(
    kube: Client, namespace: str, as_service_account: Callable[[str, str], Client]
) -> None:
    for name in ("bare", "reader"):
        kube.create(ServiceAccount(metadata=ObjectMeta(name=name)), namespace=namespace)
    kube.create(
        Role(
            metadata=ObjectMeta(name="cm-reader"),
            rules=[PolicyRule(apiGroups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
        namespace=namespace,
    )
    kube.create(
        RoleBinding(
            metadata=ObjectMeta(name="reader"),
            roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name="cm-reader"),
            subjects=[Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
        namespace=namespace,
    )

    with pytest.raises(ApiError) as denied:
        list(as_service_account(namespace, "bare").list(ConfigMap, namespace=namespace))
    assert denied.value.status.code == 403
    assert f"system:serviceaccount:{namespace}:bare" in str(denied.value.status.message)

    reader = as_service_account(namespace, "reader")
    assert any(cm.metadata.name == "kube-root-ca.crt" for cm in reader.list(ConfigMap, namespace=namespace))
    with pytest.raises(ApiError) as forbidden:
        reader.create(ConfigMap(metadata=ObjectMeta(name="x")), namespace=namespace)
    assert forbidden.value.status.code == 403


def test_lease_update_with_a_stale_resource_version_conflicts(kube: Client, namespace: str) -> None:
    lease = {"metadata": {"name": "smoke"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    created = kube.create(resource(Lease, lease), namespace=namespace)
    stale = created.metadata.resourceVersion
    now = datetime.now(UTC)
    created.spec.holderIdentity = "b"
    created.spec.renewTime = now
    kube.replace(created)  # into the namespace it was read from

    created.metadata.resourceVersion = stale
    created.spec.holderIdentity = "c"
    with pytest.raises(ApiError) as conflict:
        kube.replace(created)  # into the namespace it was read from
    assert conflict.value.status.code == 409
    assert kube.get(Lease, "smoke", namespace=namespace).spec.holderIdentity == "b"
