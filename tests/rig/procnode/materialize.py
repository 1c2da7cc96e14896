"""Turns a pod spec's env and volumes into a process environment and files, as a kubelet does.

A missing Secret, ConfigMap or key raises ``ConfigError`` with the reason a kubelet would report
(``CreateContainerConfigError``); the pod worker keeps retrying, so creating the object later lets it start.
"""

from __future__ import annotations

import base64
import math
import os
import re
from pathlib import Path
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Secret, ServiceAccount

Obj = dict[str, Any]


class ConfigError(Exception):
    """The container's configuration cannot be resolved yet (kubelet: CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(text: str) -> float:
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a quantity: {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


class Materializer:
    """Resolves references for one pod; caches objects so one pod start reads each object once."""

    def __init__(self, client: AsyncClient, pod: Obj, node_allocatable: dict[str, str]) -> None:
        self.client = client
        self.pod = pod
        self.namespace: str = pod["metadata"]["namespace"]
        self.allocatable = node_allocatable
        self._secrets: dict[str, dict[str, bytes] | None] = {}
        self._configmaps: dict[str, dict[str, bytes] | None] = {}
        self.pod_ip = ""
        self.host_ip = ""

    # ------------------------------------------------------------ objects

    async def secret(self, name: str, optional: bool) -> dict[str, bytes] | None:
        if name not in self._secrets:
            try:
                obj = await self.client.get(Secret, name, namespace=self.namespace)
                self._secrets[name] = {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                self._secrets[name] = None
        data = self._secrets[name]
        if data is None and not optional:
            raise ConfigError(f'secret "{name}" not found')
        return data

    async def configmap(self, name: str, optional: bool) -> dict[str, bytes] | None:
        if name not in self._configmaps:
            try:
                obj = await self.client.get(ConfigMap, name, namespace=self.namespace)
                loaded = {k: v.encode() for k, v in (obj.data or {}).items()}
                loaded.update({k: base64.b64decode(v) for k, v in (obj.binaryData or {}).items()})
                self._configmaps[name] = loaded
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                self._configmaps[name] = None
        data = self._configmaps[name]
        if data is None and not optional:
            raise ConfigError(f'configmap "{name}" not found')
        return data

    async def key_of(self, kind: str, ref: Obj) -> str | None:
        optional = bool(ref.get("optional", False))
        getter = self.secret if kind == "secret" else self.configmap
        data = await getter(ref["name"], optional)
        if data is None:
            return None
        if ref["key"] not in data:
            if optional:
                return None
            raise ConfigError(
                f"couldn't find key {ref['key']} in {kind.capitalize()} {self.namespace}/{ref['name']}"
            )
        return data[ref["key"]].decode()

    # ------------------------------------------------------------ downward API

    def field(self, path: str) -> str:
        meta = self.pod["metadata"]
        spec = self.pod["spec"]
        simple = {
            "metadata.name": meta.get("name", ""),
            "metadata.namespace": self.namespace,
            "metadata.uid": meta.get("uid", ""),
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
            "status.hostIP": self.host_ip,
            "status.podIP": self.pod_ip,
            "status.podIPs": self.pod_ip,
            "status.hostIPs": self.host_ip,
        }
        if path in simple:
            return str(simple[path])
        for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
            values: dict[str, str] = meta.get(source) or {}
            if path == prefix:
                return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
            if match := re.fullmatch(re.escape(prefix) + r"\['(.+)'\]", path):
                return values.get(match.group(1), "")
        raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")

    def resource(self, ref: Obj, container: Obj | None) -> str:
        if container is None:
            name = ref.get("containerName")
            container = next((c for c in self.pod["spec"]["containers"] if c["name"] == name), None)
            if container is None:
                raise ConfigError(f"resourceFieldRef names unknown container {name!r}")
        kind, _, resource = ref["resource"].partition(".")
        resources = container.get("resources") or {}
        value = (resources.get(kind) or {}).get(resource)
        if value is None and kind == "requests":
            value = (resources.get("limits") or {}).get(resource)
        if value is None:
            value = self.allocatable.get(resource, "0")
        divisor = quantity(ref.get("divisor") or "1")
        return str(math.ceil(quantity(value) / divisor))

    # ------------------------------------------------------------ env

    async def environment(self, container: Obj) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind in ("secret", "configMap"):
                ref = source.get(f"{kind}Ref")
                if ref:
                    getter = self.secret if kind == "secret" else self.configmap
                    data = await getter(ref["name"], bool(ref.get("optional", False)))
                    env.update({prefix + k: v.decode() for k, v in (data or {}).items()})
        for var in container.get("env") or []:
            value = await self._env_value(var, container, env)
            if value is not None:
                env[var["name"]] = value
        return env

    async def _env_value(self, var: Obj, container: Obj, env: dict[str, str]) -> str | None:
        if "valueFrom" not in var:
            return expand(var.get("value", ""), env)
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            return await self.key_of("secret", source["secretKeyRef"])
        if "configMapKeyRef" in source:
            return await self.key_of("configmap", source["configMapKeyRef"])
        if "fieldRef" in source:
            return self.field(source["fieldRef"]["fieldPath"])
        if "resourceFieldRef" in source:
            return self.resource(source["resourceFieldRef"], container)
        raise ConfigError(f"unsupported valueFrom for env {var['name']}: {sorted(source)}")

    # ------------------------------------------------------------ volumes

    async def volumes(self, root: Path) -> dict[str, Path]:
        """Writes every volume under ``root``; returns volume name -> host directory."""
        paths: dict[str, Path] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            target = root / volume["name"]
            target.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                pass
            elif "secret" in volume:
                spec = volume["secret"]
                data = await self.secret(spec["secretName"], bool(spec.get("optional", False)))
                write_items(target, data or {}, spec.get("items"), spec.get("defaultMode", 0o644))
            elif "configMap" in volume:
                spec = volume["configMap"]
                data = await self.configmap(spec["name"], bool(spec.get("optional", False)))
                write_items(target, data or {}, spec.get("items"), spec.get("defaultMode", 0o644))
            elif "downwardAPI" in volume:
                await self._downward(target, volume["downwardAPI"].get("items") or [])
            elif "projected" in volume:
                for source in volume["projected"].get("sources") or []:
                    await self._projected(target, source)
            else:
                raise ConfigError(
                    f"volume {volume['name']}: only emptyDir, secret, configMap, downwardAPI "
                    "and projected volumes run on the process node"
                )
            paths[volume["name"]] = target
        return paths

    async def _downward(self, target: Path, items: list[Obj]) -> None:
        for item in items:
            if "fieldRef" in item:
                value = self.field(item["fieldRef"]["fieldPath"])
            else:
                value = self.resource(item["resourceFieldRef"], None)
            write_file(target / item["path"], value.encode(), item.get("mode", 0o644))

    async def _projected(self, target: Path, source: Obj) -> None:
        if "secret" in source:
            spec = source["secret"]
            data = await self.secret(spec["name"], bool(spec.get("optional", False)))
            write_items(target, data or {}, spec.get("items"), 0o644)
        elif "configMap" in source:
            spec = source["configMap"]
            data = await self.configmap(spec["name"], bool(spec.get("optional", False)))
            write_items(target, data or {}, spec.get("items"), 0o644)
        elif "downwardAPI" in source:
            await self._downward(target, source["downwardAPI"].get("items") or [])
        elif "serviceAccountToken" in source:
            spec = source["serviceAccountToken"]
            token = await self.service_account_token(
                spec.get("audience"), spec.get("expirationSeconds", 3607)
            )
            write_file(target / spec["path"], token.encode(), 0o600)
        else:
            raise ConfigError(f"unsupported projected volume source {sorted(source)}")

    async def service_account_token(self, audience: str | None, seconds: int) -> str:
        """A bound token through the TokenRequest API, as the kubelet gets one."""
        meta = self.pod["metadata"]
        request = ServiceAccount.Token(
            metadata=ObjectMeta(name=self.pod["spec"].get("serviceAccountName") or "default"),
            spec=TokenRequestSpec(
                audiences=[audience] if audience else [],
                expirationSeconds=seconds,
                boundObjectRef=BoundObjectReference(
                    kind="Pod", apiVersion="v1", name=meta["name"], uid=meta["uid"]
                ),
            ),
        )
        name = self.pod["spec"].get("serviceAccountName") or "default"
        try:
            result = await self.client.create(request, name, namespace=self.namespace)
        except ApiError as exc:
            raise ConfigError(f"token for service account {name}: {exc.status.message}") from exc
        assert result.status is not None
        return str(result.status.token)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes, unknown ones stay."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


def write_file(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)


def write_items(target: Path, data: dict[str, bytes], items: list[Obj] | None, default_mode: int) -> None:
    if items is None:
        items = [{"key": key, "path": key} for key in data]
    for item in items:
        if item["key"] not in data:
            raise ConfigError(f"couldn't find key {item['key']} for a volume item")
        write_file(target / item["path"], data[item["key"]], item.get("mode", default_mode))
