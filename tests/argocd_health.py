"""ArgoCD's own code on argocd/: health of live or fixture objects, refresh and diff decisions.

Every question goes to argocd-check (tests/rig/argocd-check), built from the pinned argo-cd module: the
argocd-cm settings are parsed by ArgoCD's SettingsManager and the health script runs in ArgoCD's Lua VM, the
same path the application controller takes. The e2e suite calls it on statuses the operator wrote on the rig.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.tools import run

ARGOCD_CM = REPO / "argocd" / "argocd-cm.yaml"
Obj = dict[str, Any]


def ask(requests: list[Obj], argocd_cm: Path = ARGOCD_CM) -> list[Obj]:
    """Answers to argocd-check requests (see its main.go), in order, from one process."""
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    answers = [json.loads(line) for line in run("argocd-check", str(argocd_cm), stdin=stdin).splitlines()]
    assert len(answers) == len(requests), f"{len(requests)} requests, {len(answers)} answers: {answers}"
    return answers


def argocd_healths(objects: list[Obj]) -> list[dict[str, str]]:
    """ArgoCD's health of each object: {"status": ..., "message": ...}."""
    answers = ask([{"op": "health", "object": obj} for obj in objects])
    for obj, answer in zip(objects, answers, strict=True):
        assert "error" not in answer, f"ArgoCD could not assess {obj['metadata']['name']}: {answer['error']}"
    return [{"status": a.get("status", ""), "message": a.get("message", "")} for a in answers]


def argocd_health(obj: Obj) -> dict[str, str]:
    return argocd_healths([obj])[0]
