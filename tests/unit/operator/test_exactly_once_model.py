"""Exactly once, attacked by a model: the real ``Reconciler``, ``LeaseKeeper``, ``Membership`` and
``planning.decide`` of three replicas against a FAKE API server in memory (``fake_cluster.py``; the rig's
``tests/e2e/test_exactly_once.py`` is the real proof), driven by hypothesis through random schedules of
triggers, policies, history limits, reconciles, time and faults.

Faults, at any step: a replica crashes between steps or at its k-th next request (before or after the server
applied it) and a new one starts with empty memory; the next N requests answer 409/422/403/429/500 or time out
(applied or not); a watch misses events and lists again later; the TTL controller or a user deletes Jobs;
someone deletes a run Lease; replicas' wall clocks are skewed by up to a minute; a foreign Job squats the
name a run will claim.

Checked after every step, from the fake server's own records (never the operator's):

(a) no run uid, and no (resource uid, run id), ever got two Job creations;
(c) under Forbid and Replace, at most one unfinished Job not being deleted per resource at any time, and at
    most one run in ``activeRuns``;
(d) ``lastRun.number`` and ``observedGeneration`` never decrease; a run that left ``activeRuns`` never comes
    back; a status write leaves exactly what the operator wrote;
and: a Job never disappears while its run is in ``activeRuns``; every recorded outcome is what a Job carrying
the run's uid came to (never another Job's); a Job is created only for a claimed, open run; every Job the
operator builds passes the server's validation.

(b) at the end, with faults stopped, live replicas and enough reconciles: every run ever claimed is closed
with its outcome in ``lastRun`` or an Event, and no Job of a closed run keeps the finalizer.

The unit tier runs a fixed set of schedules (``derandomize``: the same 300 examples of up to 40 steps every
time, in about 10 s of CPU). ``MODEL_RANDOM=1 MODEL_EXAMPLES=5000`` explores new ones; they can meet the one
known gap that is not fixed (an older ``Allow`` run whose Event is lost: see
``test_allow_older_runs_outcome_survives_losing_its_event``).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from datamanager_operator.leases import LEASE_LABEL
from datamanager_operator.model import (
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_RESOURCE_UID,
    MANAGED_BY,
    Key,
    Kind,
    job_name,
)
from tests.unit.operator.fake_cluster import (
    INFORMERS,
    OPERATOR_NAMESPACE,
    REQUEST_FAULTS,
    CrashPlan,
    Fault,
    World,
    finished,
    resource_spec,
    status_of,
)

REPLICAS = 3
MAX_RESOURCES = 4
NAMESPACES = ("team-a", "team-b")
NAMES = (
    "majors",
    "btc.candle.eu-west-1",
    # near the length limits, with dots: a Job name must stay a DNS label, labels at most 63 characters
    "market-data.binance-futures.usdm.klines-hourly1.eu.west-1.daily",
    "x" * 60 + ".candle.eu-west-1",
)
RESOURCES = st.tuples(
    st.sampled_from(("DataAudit", "AnalyticsJob")),
    st.sampled_from(NAMESPACES),
    st.sampled_from(NAMES),
    st.sampled_from(("Forbid", "Replace", "Allow")),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from((None, None, None, "*/5 * * * *")),
    st.sampled_from((0, 60, 86400)),
)
USER_ACTIONS = (
    "create",
    "run-now",
    "run-now",
    "window",
    "window",
    "limits",
    "schedule",
    "ttl",
    "suspend",
    "delete",
)
FAULTS = (
    *REQUEST_FAULTS,
    "crash-mid-reconcile",
    "crash-mid-reconcile",
    "crash",
    "restart",
    "restart",
    "restart",
    "clock-skew",
    "watch-gap",
    "relist",
    "ttl-delete",
    "user-delete-job",
    "lease-deleted",
    "squat",
)
VERBS = (
    None,
    None,
    "patch_status",
    "patch_status",
    "create_job",
    "create_job",
    "get_job",
    "get_resource",
    "release_job",
    "delete_job",
    "list_pods",
    "get_lease",
    "replace_lease",
    "create_lease",
    "list_leases",
    "record_event",
)
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "300"))
STEPS = int(os.environ.get("MODEL_STEPS", "40"))
MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    # the unit tier is deterministic: the same schedules every run (MODEL_RANDOM=1 explores new ones)
    derandomize=os.environ.get("MODEL_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
STATS: Counter[str] = Counter()  # over every example of a run: what was exercised


class ExactlyOnceModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(REPLICAS)
        self.server = self.world.server
        self.keys: list[Key] = []
        self.specs: dict[Key, dict[str, Any]] = {}
        self.steps_ok = True
        STATS["examples"] += 1

    # ------------------------------------------------------------ helpers

    def _begin(self, what: str) -> None:
        self.steps_ok = False
        STATS["steps"] += 1
        STATS[f"step:{what}"] += 1

    def _existing(self) -> list[Key]:
        return [k for k in self.keys if (k.namespace, k.name) in self.server.objects[k.kind]]

    def _pick(self, index: int) -> Key | None:
        existing = self._existing()
        return existing[index % len(existing)] if existing else None

    def _job(self, index: int, *, running: bool | None = None) -> tuple[str, str] | None:
        """An operator's Job by index: any (None), unfinished ones not being deleted (True), the others."""
        jobs = sorted(
            ref
            for ref, job in self.server.objects["Job"].items()
            if not self.server.jobs[job["metadata"]["uid"]].foreign
            and (
                running is None
                or running == (not finished(job) and not job["metadata"].get("deletionTimestamp"))
            )
        )
        return jobs[index % len(jobs)] if jobs else None

    # ------------------------------------------------------------ what users do

    @initialize(resources=st.lists(RESOURCES, min_size=1, max_size=3))
    def create_first(self, resources: list[tuple[Kind, str, str, str, int, int, str | None, int]]) -> None:
        for args in resources:
            self._create(*args)

    def _create(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        policy: str,
        succeeded: int,
        failed: int,
        schedule: str | None,
        ttl: int,
    ) -> None:
        if (namespace, name) in self.server.objects[kind] or len(self._existing()) >= MAX_RESOURCES:
            return
        spec = resource_spec(policy, succeeded, failed, schedule=schedule, ttl=ttl)
        self.server.create_resource(kind, namespace, name, spec)
        key = Key(kind, namespace, name)
        if key not in self.keys:
            self.keys.append(key)
        self.specs[key] = spec
        STATS[f"policy:{policy}"] += 1

    @rule(action=st.sampled_from(USER_ACTIONS), index=st.integers(0, 7), value=st.integers(0, 3))
    def user(self, action: str, index: int, value: int) -> None:
        """What users do: create resources, change specs, ask for runs (reusing values), delete resources."""
        self._begin(f"user:{action}")
        if action == "create":  # a new one, or a deleted one again under its name
            kind: Kind = ("DataAudit", "AnalyticsJob")[index % 2]
            policy = ("Forbid", "Replace", "Allow", "Forbid")[value]
            schedule = "*/5 * * * *" if index == value else None
            self._create(
                kind, NAMESPACES[value % 2], NAMES[index % 4], policy, value, 3 - value, schedule, 60
            )
            return
        key = self._pick(index)
        if key is None:
            return
        if action == "run-now":  # kubectl annotate ... run-now=<value> --overwrite: a, b, a, ...
            self.server.annotate(key, "aab"[value % 3])
        elif action == "delete":
            self.server.delete_resource(key)
        else:
            self.specs[key] = self._changed(self.specs[key], action, value)
            self.server.update_spec(key, self.specs[key])

    @staticmethod
    def _changed(spec: dict[str, Any], change: str, value: int) -> dict[str, Any]:
        spec = dict(spec)
        if change == "window":
            spec["window"] = ("24h", "12h", "6h", "48h")[value]
        elif change == "limits":
            spec["successfulRunsHistoryLimit"], spec["failedRunsHistoryLimit"] = value, 3 - value
        elif change == "schedule":
            if value % 2:
                spec["schedule"] = "*/5 * * * *"
            else:
                spec.pop("schedule", None)
        elif change == "ttl":
            spec["job"] = {**spec["job"], "ttlSecondsAfterFinished": (0, 60, 86400, 0)[value]}
        else:
            spec["suspend"] = value == 0 and not spec.get("suspend")
        return spec

    # ------------------------------------------------------------ what the operator does

    @precondition(lambda self: bool(self.keys))
    @rule(
        replica=st.integers(0, REPLICAS - 1),
        index=st.integers(0, 7),
        what=st.sampled_from(("round", "round", "reconcile", "beat-and-round", "round-resources-behind")),
    )
    def operate(self, replica: int, index: int, what: str) -> None:
        """A replica reconciles one resource, or catches up with its watches (maybe all but the resources')
        and reconciles every one."""
        self._begin(f"operator:{what}")
        target = self.world.slots[replica]
        if what == "reconcile":
            keys = [self.keys[index % len(self.keys)]]
        else:
            if what == "beat-and-round":
                self.world.beat(target)
            if what == "round-resources-behind":
                target.deliver("jobs")
                target.deliver("pods")
            else:
                target.deliver_all()
            keys = list(self.keys)
        for key in keys:
            STATS[f"reconcile:{self.world.reconcile(target, key)}"] += 1

    @rule(
        replica=st.integers(0, REPLICAS - 1),
        informer=st.sampled_from(INFORMERS),
        count=st.sampled_from((1, 2, 5, None)),
    )
    def deliver(self, replica: int, informer: str, count: int | None) -> None:
        """Watch events reach one informer of one replica, each informer at its own pace."""
        self._begin("deliver")
        self.world.slots[replica].deliver(informer, count)

    @rule(seconds=st.sampled_from((1, 5, 8, 16, 31, 61, 121, 301)))
    def advance(self, seconds: int) -> None:
        self._begin("advance")
        self.server.advance(seconds)

    # ------------------------------------------------------------ what the Jobs do

    @rule(
        index=st.integers(0, 15),
        what=st.sampled_from(
            ("exit-0", "exit-0", "exit-0", "exit-1", "exit-2", "exit-3", "exit-4", "stuck", "hang")
        ),
    )
    def job(self, index: int, what: str) -> None:
        self._begin("job")
        found = self._job(index, running=True)
        if found is None:
            return
        record = self.server.jobs[self.server.objects["Job"][found]["metadata"]["uid"]]
        if what.startswith("exit-"):
            done = self.server.finish_job(*found, int(what[-1]))
        elif what == "stuck":
            done = self.server.stick_job(*found)
        else:
            done = record.result is None and record.fate == "run"
            record.fate = "hang" if done else record.fate  # only activeDeadlineSeconds ends it
        if done:
            STATS[f"job:{what}"] += 1

    # ------------------------------------------------------------ faults

    @rule(
        kind=st.sampled_from(FAULTS),
        replica=st.integers(0, REPLICAS - 1),
        index=st.integers(0, 15),
        count=st.integers(0, 6),
        flag=st.booleans(),
        verb=st.sampled_from(VERBS),
        informer=st.sampled_from(INFORMERS),
        skew=st.sampled_from((-60.0, -31.0, -14.0, 0.0, 16.0, 45.0, 59.0)),
    )
    def fault(
        self,
        kind: str,
        replica: int,
        index: int,
        count: int,
        flag: bool,
        verb: str | None,
        informer: str,
        skew: float,
    ) -> None:
        self._begin(f"fault:{kind}")
        target = self.world.slots[replica]
        server = self.server
        done = True
        if kind in REQUEST_FAULTS:  # the next requests (of one replica, or anyone's) answer this ...
            fault = Fault(kind, verb, target.identity if flag else None, count + 1)
            if verb is not None and not fault.applies(verb, target.identity):
                fault.verb = None  # e.g. a 409 Conflict: an answer to writes with a precondition only
            server.faults.append(fault)
            target.deliver_all()  # ... starting with a round of that replica's
            for key in list(self.keys):
                STATS[f"reconcile:{self.world.reconcile(target, key)}"] += 1
        elif kind == "crash-mid-reconcile":  # dies at its count-th next request, which is applied or not
            done = target.alive
            if done:
                server.crashes[target.identity] = CrashPlan(count, flag)
        elif kind == "crash":
            done = target.alive
            if done:
                self.world.crash(replica)
        elif kind == "restart":  # a new process with empty memory, caches listed, a clock maybe skewed
            done = not target.alive
            if done:
                server.crashes.pop(target.identity, None)
                self.world.start_replica(replica, same_identity=flag, skew=skew if count > 3 else 0.0)
        elif kind == "clock-skew":
            target.skew = skew
        elif kind == "watch-gap":  # the events until the next list are lost to this informer
            target.broken[informer] = True
        elif kind == "relist":
            target.relist(informer)
        elif kind in ("ttl-delete", "user-delete-job"):  # kubectl delete job: how a user cancels a run
            found = self._job(index, running=kind == "user-delete-job" if flag else None)
            delete = server.ttl_delete if kind == "ttl-delete" else server.user_delete_job
            done = found is not None and delete(*found)
        elif kind == "lease-deleted":  # expired and cleaned up, or deleted by hand, under its holder
            leases = sorted(
                name
                for (_, name), lease in server.objects["Lease"].items()
                if (lease["metadata"].get("labels") or {}).get(LEASE_LABEL) == "resource"
            )
            done = bool(leases) and server.delete_lease(OPERATOR_NAMESPACE, leases[index % len(leases)])
        else:
            done = self._squat(index, manual=flag, labelled=count % 2 == 0)
        if done:
            STATS[f"fault:{kind}"] += 1

    def _squat(self, index: int, *, manual: bool, labelled: bool) -> bool:
        """Another Job takes the name the resource's next run will claim, and that run is asked for: the Job
        must never be adopted."""
        key = self._pick(index)
        if key is None:
            return False
        body = self.server.objects[key.kind][(key.namespace, key.name)]
        uid = body["metadata"]["uid"]
        status = status_of(self.server, key)
        runs = [*(status.get("activeRuns") or []), *([status["lastRun"]] if status.get("lastRun") else [])]
        number = max((int(r.get("number", 0)) for r in runs), default=0) + 1
        run_id = f"m{number}" if manual else f"g{body['metadata']['generation'] + 1}"
        labels = (
            {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: key.kind, LABEL_RESOURCE_UID: uid} if labelled else {}
        )
        self.server.squat(key.namespace, job_name(key.name, uid, run_id), labels)
        if manual:  # and the run comes
            self.server.annotate(key, f"squatted-{number}")
        else:
            self.specs[key] = self._changed(self.specs[key], "window", (index + 1) % 4)
            self.server.update_spec(key, self.specs[key])
        return True

    # ------------------------------------------------------------ invariants

    @invariant()
    def nothing_broken(self) -> None:
        assert not self.server.violations, "\n".join(self.server.violations)
        self.steps_ok = True

    def teardown(self) -> None:
        try:
            if self.steps_ok:
                problems = self.world.settle(list(self.keys))
                assert not self.server.violations, "\n".join(self.server.violations)
                assert not problems, "\n".join(problems)
                STATS["runs-claimed"] += len(self.server.runs)
                STATS["jobs-created"] += sum(self.server.created.values())
                STATS.update(
                    f"ended:{run.recorded}"
                    for run in self.server.runs.values()
                    if run.resource_uid not in self.server.deleted_resources
                )
                STATS.update(self.server.stats)
        finally:
            self.world.close()


def test_exactly_once_under_random_faults() -> None:
    STATS.clear()
    run_state_machine_as_test(ExactlyOnceModel, settings=MODEL_SETTINGS)
    print("\nexactly-once model:", dict(sorted(STATS.items())))
    # a model that exercised nothing proves nothing: each fault and each way a run ends must have happened
    for needed in (
        *(f"fault:{kind}" for kind in FAULTS if kind not in REQUEST_FAULTS),
        *(f"hit:{kind}" for kind in REQUEST_FAULTS),
        "crash:mid-reconcile",
    ):
        assert STATS[needed] > 0, f"the model never exercised {needed}: {dict(STATS)}"
    for way in (
        "RunSucceeded",
        "DeadlineExceeded",
        "ImagePullBackOff",
        "JobDeleted",
        "JobRejected",
        "Replaced",
    ):
        assert STATS[f"ended:lastRun {way}"] > 0, f"no run ended as {way}: {dict(STATS)}"
    assert STATS["ended:event RunSucceeded"] + STATS["ended:event RunFailed"] > 0, (
        "no Allow run ended in an Event"
    )
    assert STATS["jobs-created"] > 100
