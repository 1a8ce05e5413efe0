"""Request validation against LINE's own OpenAPI documents (messaging-api.yml, insight.yml).

The specs are loaded once, `$ref`s are resolved through a `referencing` registry, and one
compiled jsonschema validator is cached per operation. OpenAPI 3.0 is close to JSON Schema
draft 4 except for two keywords we teach the validator:

- `discriminator`: the `type` property picks the concrete schema (TextMessage, FlexBox, ...).
  Each concrete schema also `allOf`s its base, which carries the discriminator again, so
  the base is copied without it first (otherwise the dispatch would recurse forever).
- `nullable`: `null` is allowed where the schema says so.

Errors come back as LINE's `details` entries: `{"message": ..., "property": "messages[0].text"}`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT4

_SPEC_FILES = ("messaging-api.yml", "insight.yml")
# Bodies whose big id list the schema constrains only by size and item type (plain strings):
# a valid body is remembered with that list reduced to its length, so the next multicast
# with other ids but the same message skips the schema walk (~0.5 ms a request).
_ID_LISTS = {
    ("POST", "/v2/bot/message/multicast"): "to",
    ("POST", "/v2/bot/richmenu/bulk/link"): "userIds",
    ("POST", "/v2/bot/richmenu/bulk/unlink"): "userIds",
}
_MEMO_SIZE = 1024
_BASE_SUFFIX = "__base"
_draft4_items = Draft4Validator.VALIDATORS["items"]
_draft4_type = Draft4Validator.VALIDATORS["type"]
_STRING_ITEMS = {"type": "string"}


def _discriminator(
    validator: Any, discriminator: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    prop = discriminator["propertyName"]
    mapping: Mapping[str, str] = discriminator.get("mapping", {})
    tag = instance.get(prop)
    if tag is None:
        return  # `required` on the base schema reports the missing tag
    target = mapping.get(tag) if isinstance(tag, str) else None
    if target is None:
        error = ValidationError(
            f"Must be one of the following values: [{', '.join(mapping)}]",
            validator="enum",
            validator_value=list(mapping),
            instance=tag,
            path=[prop],
        )
        yield error
        return
    yield from validator.descend(instance, {"$ref": target})


def _items(
    validator: Any, items: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # Fast path for the hot case (500 user ids in `to`): a plain string array.
    if items == _STRING_ITEMS and isinstance(instance, list):
        if all(type(item) is str for item in instance):
            return
    yield from _draft4_items(validator, items, instance, schema)


def _type(
    validator: Any, types: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if instance is None and schema.get("nullable"):
        return
    yield from _draft4_type(validator, types, instance, schema)


def _required(
    validator: Any, required: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    for name in required:
        if name not in instance:
            # The path names the missing property, as LINE's `details[].property` does.
            yield ValidationError("must be specified", validator="required", path=[name])


OpenApi30Validator = validators.extend(
    Draft4Validator,
    {"discriminator": _discriminator, "items": _items, "type": _type, "required": _required},
)


def _split_discriminated_bases(schemas: dict[str, Any], doc_uri: str) -> None:
    """Point each concrete schema's `allOf` at a copy of its base without the discriminator."""
    for name, schema in list(schemas.items()):
        discriminator = schema.get("discriminator") if isinstance(schema, dict) else None
        if not discriminator:
            continue
        base = copy.deepcopy(schema)
        del base["discriminator"]
        schemas[name + _BASE_SUFFIX] = base
        local_ref = f"#/components/schemas/{name}"
        for target in discriminator.get("mapping", {}).values():
            target_name = target.rsplit("/", 1)[-1]
            for part in schemas.get(target_name, {}).get("allOf", []):
                if part.get("$ref") == local_ref:
                    part["$ref"] = local_ref + _BASE_SUFFIX
        # Absolute mapping targets, so `descend` resolves them from any nesting depth.
        discriminator["mapping"] = {
            tag: doc_uri + target for tag, target in discriminator.get("mapping", {}).items()
        }


def _absolute_refs(schema: Any, uri: str) -> Any:
    """A copy of an inline schema whose local `$ref`s name the spec document."""
    if isinstance(schema, dict):
        return {
            k: (uri + v if k == "$ref" and v.startswith("#") else _absolute_refs(v, uri))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(v, uri) for v in schema]
    return schema


def _property_path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_message(error: ValidationError) -> str:
    keyword, schema = error.validator, error.schema if isinstance(error.schema, dict) else {}
    if keyword in ("minItems", "maxItems"):
        return f"Size must be between {schema.get('minItems', 0)} and {schema.get('maxItems')}"
    if keyword in ("minLength", "maxLength"):
        return f"Length must be between {schema.get('minLength', 0)} and {schema.get('maxLength')}"
    if keyword == "minimum":
        return f"Must be greater than or equal to {error.validator_value}"
    if keyword == "maximum":
        return f"Must be less than or equal to {error.validator_value}"
    if keyword == "enum":
        values = error.validator_value if isinstance(error.validator_value, list) else []
        return f"Must be one of the following values: [{', '.join(map(str, values))}]"
    if keyword == "pattern":
        return f'must match "{error.validator_value}"'
    if keyword == "type":
        return f"must be of type {error.validator_value}"
    return str(error.message)


def line_details(errors: list[ValidationError]) -> list[dict[str, str]]:
    details = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        detail = {"message": _line_message(error)}
        prop = _property_path(error)
        if prop:
            detail["property"] = prop
        details.append(detail)
    return details


class LineSpec:
    """Compiled request-body and query validators, keyed by (METHOD, path template)."""

    def __init__(self, spec_dir: Path) -> None:
        registry: Registry = Registry()
        self._bodies: dict[tuple[str, str], Any] = {}
        self._queries: dict[tuple[str, str], dict[str, tuple[bool, Any]]] = {}
        self._valid_memo: dict[tuple[str, str, str], None] = {}
        self._integer_queries: set[tuple[str, str, str]] = set()
        docs: dict[str, dict[str, Any]] = {}
        for file_name in _SPEC_FILES:
            with (spec_dir / file_name).open("rb") as handle:
                doc = yaml.load(handle, Loader=yaml.CSafeLoader)
            _split_discriminated_bases(doc["components"]["schemas"], file_name)
            docs[file_name] = doc
            registry = registry.with_resource(file_name, DRAFT4.create_resource(doc))
        self.registry = registry
        for file_name, doc in docs.items():
            for template, item in doc["paths"].items():
                for method, operation in item.items():
                    if method in ("get", "post", "put", "delete"):
                        self._compile(file_name, template, method.upper(), operation, item)

    def _compile(
        self, uri: str, template: str, method: str, operation: dict[str, Any], item: dict
    ) -> None:
        key = (method, template)
        content = (operation.get("requestBody") or {}).get("content", {})
        body_schema = content.get("application/json", {}).get("schema")
        if body_schema is not None:
            self._bodies[key] = self._validator(uri, body_schema)
        params = list(item.get("parameters", [])) + list(operation.get("parameters", []))
        queries = {
            p["name"]: (bool(p.get("required")), self._validator(uri, p.get("schema", {})))
            for p in params
            if p.get("in") == "query"
        }
        for p in params:
            if p.get("in") == "query" and p.get("schema", {}).get("type") == "integer":
                self._integer_queries.add((method, template, p["name"]))
        if queries:
            self._queries[key] = queries

    def _validator(self, uri: str, schema: dict[str, Any]) -> Any:
        return OpenApi30Validator(_absolute_refs(schema, uri), registry=self.registry)

    def has_body(self, method: str, template: str) -> bool:
        return (method, template) in self._bodies

    def body_details(self, method: str, template: str, body: Any) -> list[dict[str, str]]:
        validator = self._bodies.get((method, template))
        if validator is None:
            return []
        memo_key = self._memo_key(method, template, body)
        if memo_key is not None and memo_key in self._valid_memo:
            return []
        details = line_details(list(validator.iter_errors(body)))
        if memo_key is not None and not details:
            if len(self._valid_memo) >= _MEMO_SIZE:
                self._valid_memo.clear()
            self._valid_memo[memo_key] = None
        return details

    @staticmethod
    def _memo_key(method: str, template: str, body: Any) -> tuple[str, str, str] | None:
        field = _ID_LISTS.get((method, template))
        ids = body.get(field) if field is not None and isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(type(item) is str for item in ids):
            return None
        shape = json.dumps({**body, field: len(ids)}, sort_keys=True)
        return (method, template, shape)

    def query_details(
        self, method: str, template: str, query: Mapping[str, str]
    ) -> list[dict[str, str]]:
        details: list[dict[str, str]] = []
        for name, (required, validator) in self._queries.get((method, template), {}).items():
            if name not in query:
                if required:
                    details.append({"message": "must be specified", "property": name})
                continue
            value: Any = query[name]
            if (method, template, name) in self._integer_queries:  # query strings are text
                try:
                    value = int(value)
                except ValueError:
                    details.append({"message": "must be of type integer", "property": name})
                    continue
            for error in validator.iter_errors(value):
                details.append({"message": _line_message(error), "property": name})
        return details

    def schema_validator(self, uri: str, schema_name: str) -> Any:
        """A validator for one component schema, e.g. for tests of payload builders."""
        return OpenApi30Validator(
            {"$ref": f"{uri}#/components/schemas/{schema_name}"}, registry=self.registry
        )
