"""Least privilege, proven: every request the suite's operator made (the API server's audit log) is granted
by the chart's RBAC, and every grant is used by some request, at no wider scope than the requests need."""

from __future__ import annotations

import dataclasses

import pytest

from tests.e2e.conftest import (
    OPERATOR_USER,
    OPERATOR_VALUES,
    RELEASE,
    RELEASE_NAMESPACE,
    render,
)
from tests.fixtures.audit import AuditLog
from tests.fixtures.rbac import Permission, covers, granted, needed, used

# Asked of the operator by an admission plugin, not by any request of its own, so never in the audit log:
# OwnerReferencesPermissionEnforcement (OpenShift and hardened clusters enable it; the rig does not) lets
# only whoever may update the owner's finalizers create a Job whose owner reference blocks the owner's
# foreground deletion, which every run's Job has.
ADMISSION_ONLY = {
    Permission("datamanager.petrosa.io", f"{kind}/finalizers", "update", "cluster")
    for kind in ("dataaudits", "analyticsjobs")
}
# The reconciler is kind-generic (every request names its resource through one table), so a request the suite
# made for one kind is one the other kind needs on the same path: a status conflict (then a get) happens to
# DataAudits under the suite's stress test, and would to AnalyticsJobs alike. Both kinds count as one here.
KINDS = {"analyticsjobs": "dataaudits"}


def as_one_kind(permission: Permission) -> Permission:
    kind, slash, sub = permission.resource.partition("/")
    return dataclasses.replace(permission, resource=KINDS.get(kind, kind) + slash + sub)


# The suite's tests that drive the operator through what it does; without them the comparison means nothing.
SUITE = {"test_operator.py", "test_schedule.py", "test_exactly_once.py", "test_invalid_resources.py"}


@pytest.mark.after_suite
def test_every_request_of_the_operator_is_granted_and_every_grant_is_used(
    request: pytest.FixtureRequest, rig_env: dict[str, str], operator_release: str, operator_audit_start: int
) -> None:
    collected = {item.path.name for item in request.session.items}
    if not collected >= SUITE:
        pytest.skip(f"compares the requests of the whole e2e suite; {sorted(SUITE - collected)} did not run")
    rendered = render(rig_env, RELEASE, RELEASE_NAMESPACE, *OPERATOR_VALUES)
    grants = granted(rendered, f"{RELEASE}-datamanager", RELEASE_NAMESPACE)
    log = AuditLog(rig_env["RIG_AUDIT_LOG"]).entries(operator_audit_start)
    uses = used(log, OPERATOR_USER, RELEASE_NAMESPACE)
    table = "\n".join(f"  {count:6d}  {use}" for use, count in sorted(uses.items()))

    ungranted = sorted(use for use in uses if not any(covers(grant, use) for grant in grants))
    assert not ungranted, f"requests the chart does not grant: {', '.join(map(str, ungranted))}\n{table}"
    unused = sorted(
        g
        for g in grants
        if g not in ADMISSION_ONLY and not needed(as_one_kind(g), [as_one_kind(use) for use in uses])
    )
    assert not unused, (
        "granted, but no request of the suite needs it (or not at that scope): "
        + ", ".join(f"{g} by {grants[g]}" for g in unused)
        + f"\n{table}"
    )
    assert set(grants) >= ADMISSION_ONLY
    assert not any(covers(grant, use) for grant in ADMISSION_ONLY for use in uses)
    # across the cluster the operator only reads; everything it writes is in a namespace it manages or its own
    assert {use.verb for use in uses if use.scope == "cluster"} <= {"list", "watch"}, table
