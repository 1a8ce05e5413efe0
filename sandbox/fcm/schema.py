"""JSON Schemas built from FCM's Google API Discovery document, and Google-shaped violations.

The discovery document (`reference/fcm/fcm.v1.json`) names fields in lowerCamelCase, but the
proto3 JSON mapping FCM uses also accepts the original snake_case names (firebase-admin sends
`collapse_key`, `validate_only`, ...), so every object schema lists both spellings. Unknown
fields are rejected, as Google does ("Cannot find field").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

_DURATION = r"^-?[0-9]+(\.[0-9]{1,9})?s$"
_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_NUMERIC_STRING = r"^-?[0-9]+$"


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _convert(prop: dict[str, Any]) -> dict[str, Any]:
    """One discovery property → one JSON Schema (refs point into `$defs`)."""
    if "$ref" in prop:
        return {"$ref": f"#/$defs/{prop['$ref']}"}
    kind = prop.get("type")
    fmt = prop.get("format")
    if "enum" in prop:
        # proto3 JSON accepts an enum's name or its number; Google's JSON front end also takes
        # the name in any case (firebase-admin sends android.priority as "high").
        names = "|".join(re.escape(value) for value in prop["enum"])
        return {
            "anyOf": [
                {"type": "string", "pattern": f"^(?i:{names})$"},
                {"type": "integer", "minimum": 0},
            ]
        }
    if kind == "string":
        if fmt == "google-duration":
            return {"type": "string", "pattern": _DURATION}
        if fmt == "google-datetime":
            return {"type": "string", "pattern": _DATETIME}
        if fmt in ("int64", "uint64"):
            return {"type": ["string", "integer"], "pattern": _NUMERIC_STRING}
        return {"type": "string"}
    if kind == "integer":
        # int32 may come as a JSON number or a decimal string.
        return {
            "anyOf": [
                {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
                {"type": "string", "pattern": _NUMERIC_STRING},
            ]
        }
    if kind == "number":
        return {"type": ["number", "string"]}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "array":
        return {"type": "array", "items": _convert(prop.get("items", {}))}
    if kind == "any":
        return {}
    if kind == "object":
        if "additionalProperties" in prop:
            return {
                "type": "object",
                "additionalProperties": _convert(prop["additionalProperties"]),
            }
        return _object(prop)
    return {}


def _object(schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        converted = _convert(prop)
        properties[name] = converted
        properties[snake_case(name)] = converted
    return {"type": "object", "properties": properties, "additionalProperties": False}


def build_schemas(discovery: dict[str, Any]) -> dict[str, Any]:
    """`{"$defs": {...}}` with one JSON Schema per discovery schema."""
    return {"$defs": {name: _object(s) for name, s in discovery["schemas"].items()}}


@lru_cache(maxsize=4)
def load_discovery(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class RequestValidator:
    """Validates a `SendMessageRequest` (or any named schema) and reports Google-style."""

    def __init__(self, discovery: dict[str, Any], root: str = "SendMessageRequest") -> None:
        schemas = build_schemas(discovery)
        schema = {**schemas, "$ref": f"#/$defs/{root}"}
        validator_cls = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
        validator_cls.check_schema(schema)
        self._validator = validator_cls(schema)
        self.schemas = schemas

    def violations(self, body: Any) -> list[FieldViolation]:
        found = []
        for error in self._validator.iter_errors(body):
            found.append(_to_violation(error))
        return sorted(found, key=lambda v: v.field)


def _to_violation(error: jsonschema.ValidationError) -> FieldViolation:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        unknown = sorted(k for k in error.instance if k not in allowed)
        where = path or "(root)"
        names = ", ".join(f'"{k}"' for k in unknown)
        return FieldViolation(
            f"{path}.{unknown[0]}" if path else unknown[0],
            f"Invalid JSON payload received. Unknown name {names} at '{where}': Cannot find field.",
        )
    value = json.dumps(error.instance, ensure_ascii=False)[:200]
    return FieldViolation(path or "(root)", f"Invalid value at '{path}', {value}")
