"""Runs ArgoCD's health script for the two kinds in a real Lua interpreter (lupa), as ArgoCD does."""

from __future__ import annotations

from typing import Any

from lupa import LuaRuntime

from tests.conftest import REPO

SCRIPT = (REPO / "argocd" / "health" / "health.lua").read_text()


def _to_lua(lua: LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(SCRIPT)
    return {"status": str(result["status"]), "message": str(result["message"] or "")}
