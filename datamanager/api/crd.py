"""Generates the CustomResourceDefinitions from the API models: ``python -m datamanager.api.crd crds/``.

Pydantic's JSON schema becomes a structural OpenAPI v3 schema (no $ref, no anyOf-with-null, no titles),
with defaults the API server applies, and the cross-field rules that JSON schema cannot express as CEL
``x-kubernetes-validations`` with messages a user understands. A test regenerates and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path
from string import Formatter
from typing import Any
from zoneinfo import available_timezones

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from datamanager.api.analyticsjob import AnalyticsJobSpec
from datamanager.api.common import (
    _DURATION_UNITS,
    CANDLE_GRACE,
    GROUP,
    VERSION,
    Interval,
    describe_minimum_window,
)
from datamanager.api.dataaudit import DataAuditSpec
from datamanager.api.schedule import (
    ASCENDING,
    DESCRIBED,
    DOM,
    FIELD_ASCENDING,
    FIELD_GRAMMARS,
    FIELD_MESSAGE,
    FIELDS,
    GRAMMAR,
    MONTH,
    NEVER,
    NEVER_MESSAGE,
    RANGE_MESSAGE,
    SHAPE_MESSAGE,
    TOKEN,
)
from datamanager.api.status import ResourceStatus

Schema = dict[str, Any]
CATEGORY = "datamanager"


class _WithFactoryDefaults(GenerateJsonSchema):
    """Emits defaults that come from ``default_factory`` too, so the API server fills whole objects in."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()  # type: ignore[call-arg]
            if isinstance(value, BaseModel):
                value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
            elif isinstance(value, list):
                value = [v.value if hasattr(v, "value") else v for v in value]
            schema = {**schema, "default": value}
        return super().default_schema(schema)


def _structural(node: Any, defs: Schema) -> Any:
    """JSON schema -> Kubernetes structural schema."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1 and len(options) < len(node["anyOf"]):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", 0) is None:
                rest.pop("default")
            return _structural({**options[0], **rest, "nullable": True}, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):  # OpenAPI v3.0: a flag on minimum/maximum
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out[key] = _structural(value, defs)
        else:
            out[key] = _structural(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def openapi_schema(model: type[BaseModel]) -> Schema:
    raw = model.model_json_schema(by_alias=True, schema_generator=_WithFactoryDefaults)
    schema: Schema = _structural(raw, raw.get("$defs", {}))
    return schema


# ---------------------------------------------------------------- CEL rules

_INTERVAL_SECONDS = "{" + ", ".join(f"'{i.value}': {i.seconds}" for i in Interval) + "}"
_UNIT_SECONDS = "{" + ", ".join(f"'{u}': {s}" for u, s in _DURATION_UNITS.items()) + "}"
_WINDOW_SECONDS = (
    "int(self.window.substring(0, size(self.window) - 1))"
    f" * {_UNIT_SECONDS}[self.window.substring(size(self.window) - 1)]"
)

_GRACE = int(CANDLE_GRACE.total_seconds())
_MINIMUMS = ", ".join(f"{describe_minimum_window(i)} for {i.value}" for i in Interval)
# The same message naming the longest interval and its minimum: membership tests from the longest interval
# down (a nested map/filter over the list costs the API server's estimate over its CEL budget).
_LONGEST_MINIMUM = (
    "".join(
        f"'{i.value}' in self.intervals ? '{i.value}: it must be at least {describe_minimum_window(i)}' : "
        for i in sorted(Interval, key=lambda interval: -interval.seconds)
    )
    + "''"
)
_WINDOW_MESSAGE = (
    f"'window ' + self.window + ' is too short for interval ' + ({_LONGEST_MINIMUM})"
    " + ' (twice the interval plus the 60 s grace), so that it always holds a closed candle'"
)


# ---------------------------------------------------------------- schedule rules
# datamanager.api.schedule's three rules, in its order and words: each fires only when the ones before it
# pass, so a rejected schedule gets exactly one message, the model's.
_TOKENS = f"self.findAll('{TOKEN}')"


def _shown(index: int) -> str:
    """Token ``index`` as datamanager.api.schedule.shown quotes it."""
    return f"{_TOKENS}[{index}].replace('\\n', '\\\\n')"


def _cel_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cel_format(template: str, **values: str) -> str:
    """A message template of datamanager.api.schedule as a CEL string expression of ``values``."""
    parts: list[str] = []
    for literal, name, _, _ in Formatter().parse(template):
        if literal:
            parts.append(_cel_string(literal))
        if name is not None:
            parts.append(values[name])
    return " + ".join(parts)


def _first_field(patterns: tuple[str, ...], message: str, otherwise: str) -> str:
    """``message`` for the first token that does not match its field's pattern, else ``otherwise``."""
    expression = otherwise
    for index in reversed(range(len(FIELDS))):
        named = _cel_format(
            message,
            field=_cel_string(FIELDS[index].name),
            token=_shown(index),
            values=_cel_string(DESCRIBED[index]),
        )
        expression = f"!{_TOKENS}[{index}].matches(r'{patterns[index]}') ? {named} : {expression}"
    return expression


def _schedule_rules() -> list[Schema]:
    shape = _cel_string(SHAPE_MESSAGE)
    grammar, ascending, never = (f"self.matches(r'{p}')" for p in (GRAMMAR, ASCENDING, NEVER))
    range_fallback = _cel_string(RANGE_MESSAGE.format(field="a field", token="a-b"))  # as problem()
    return [
        {
            "rule": grammar,
            "message": SHAPE_MESSAGE,
            "messageExpression": f"size({_TOKENS}) != {len(FIELDS)} ? {shape}"
            f" : {_first_field(FIELD_GRAMMARS, FIELD_MESSAGE, shape)}",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!{grammar} || {ascending}",
            "message": RANGE_MESSAGE.format(field="a field", token="a-b"),
            "messageExpression": _first_field(FIELD_ASCENDING, RANGE_MESSAGE, range_fallback),
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!{ascending} || !{never}",
            "message": NEVER_MESSAGE.format(days="the day of month", months="the month"),
            "messageExpression": _cel_format(NEVER_MESSAGE, days=_shown(DOM), months=_shown(MONTH)),
            "reason": "FieldValueInvalid",
        },
    ]


def _zones_rule() -> Schema:
    zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
    listing = ", ".join(f"'{z}'" for z in zones)
    return {
        "rule": f"self in [{listing}]",
        "message": "timeZone must be an IANA time zone name such as UTC, Europe/Lisbon or America/New_York",
        "reason": "FieldValueInvalid",
    }


def _spec_rules() -> list[Schema]:
    return [
        {
            "rule": f"self.intervals.all(i, {_WINDOW_SECONDS} >= 2 * {_INTERVAL_SECONDS}[i] + {_GRACE})",
            "message": "window must be at least twice the longest interval plus one minute, so that it always"
            f" holds a closed candle: {_MINIMUMS}",
            "messageExpression": _WINDOW_MESSAGE,
            "fieldPath": ".window",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": "!has(self.job) || !has(self.job.parallelism)"
            " || self.job.parallelism <= size(self.symbols)",
            "message": "job.parallelism cannot exceed the number of symbols (each shard takes at least one)",
            "fieldPath": ".job.parallelism",
            "reason": "FieldValueInvalid",
        },
    ]


def _decorate_spec(spec: Schema, extra_rules: list[Schema]) -> Schema:
    props = spec["properties"]
    props["schedule"]["x-kubernetes-validations"] = _schedule_rules()
    props["schedule"]["description"] = (
        "Cron expression read in timeZone: 5 fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 "
        "or jan-dec, day of week 0-7 or sun-sat), each * or a list of values, ascending ranges a-b and steps "
        "*/n, a-b/n, a/n (n 1-99); or @yearly, @monthly, @weekly, @daily, @hourly. Without it the resource "
        "runs when created, changed or triggered."
    )
    props["timeZone"]["x-kubernetes-validations"] = [_zones_rule()]
    for name in ("symbols", "intervals"):
        props[name]["x-kubernetes-list-type"] = "set"
    spec["x-kubernetes-validations"] = _spec_rules() + extra_rules
    spec.setdefault("required", [])
    return spec


def _audit_spec() -> Schema:
    spec = _decorate_spec(openapi_schema(DataAuditSpec), [])
    spec["properties"]["checks"]["x-kubernetes-list-type"] = "set"
    thresholds = spec["properties"]["thresholds"]
    thresholds["x-kubernetes-validations"] = [
        {
            "rule": "self.healthy > self.degraded && self.degraded > self.unhealthy",
            "message": "thresholds must be ordered: healthy > degraded > unhealthy (e.g. 90, 70, 50)",
            "reason": "FieldValueInvalid",
        }
    ]
    return spec


def _analytics_spec() -> Schema:
    spec = _decorate_spec(openapi_schema(AnalyticsJobSpec), [])
    spec["properties"]["families"]["x-kubernetes-list-type"] = "set"
    return spec


_COMMON_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Last Run", "type": "date", "jsonPath": ".status.lastRun.completionTime"},
    {"name": "Next Run", "type": "string", "jsonPath": ".status.nextRunTime"},
    {"name": "Results", "type": "string", "priority": 1, "jsonPath": ".status.results.collection"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _without_defaults(node: Any) -> Any:
    """Status is the operator's to write: the API server must not fill in fields it left out."""
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def crd(kind: str, plural: str, short_names: list[str], spec: Schema, health_column: bool) -> Schema:
    columns = list(_COMMON_COLUMNS)
    if health_column:
        columns.insert(0, {"name": "Health", "type": "number", "jsonPath": ".status.healthScore"})
        columns.insert(
            1, {"name": "Level", "type": "string", "jsonPath": ".status.healthLevel", "priority": 1}
        )
    status = _without_defaults(openapi_schema(ResourceStatus))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "datamanager", "app.kubernetes.io/part-of": "datamanager"},
            "annotations": {
                # ArgoCD applies the CRDs before anything that uses them
                "argocd.argoproj.io/sync-wave": "-1",
                # Deleting a CRD deletes every DataAudit and AnalyticsJob with it: neither Helm (uninstall)
                # nor ArgoCD (prune, or deleting the Application) ever does that; removing them is a
                # deliberate `kubectl delete crd`.
                "helm.sh/resource-policy": "keep",
                "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": spec.get("description", f"A {kind} resource."),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> dict[str, Schema]:
    return {
        "dataaudits.yaml": crd("DataAudit", "dataaudits", ["da", "audit"], _audit_spec(), health_column=True),
        "analyticsjobs.yaml": crd(
            "AnalyticsJob", "analyticsjobs", ["aj"], _analytics_spec(), health_column=False
        ),
    }


def render(schema: Schema) -> str:
    header = "# Generated by `make crds` from datamanager/api; do not edit by hand.\n"
    return header + yaml.safe_dump(schema, sort_keys=False, width=120)


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "crds")
    target.mkdir(parents=True, exist_ok=True)
    for name, schema in all_crds().items():
        (target / name).write_text(render(schema))
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
