"""The hub's OpenAPI 3.1 document, built from the `ApiRoutes` declarations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from notify.web.api import ApiRoutes, Endpoint, all_endpoints

REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}


def build_openapi(tables: Sequence[ApiRoutes], *, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in all_endpoints(tables):
        path = _PATH_PARAM.sub(r"{\1}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "staffToken": {"type": "http", "scheme": "bearer", "description": "stf_… token"},
                "deviceCredential": {"type": "http", "scheme": "bearer", "description": "dev_…"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
            },
        },
    }


def _add_components(components: dict[str, Any], defs: dict[str, Any]) -> None:
    """Add schemas; two different models with one name would silently overwrite each other."""
    for name, schema in defs.items():
        if name in components and components[name] != schema:
            raise ValueError(f"two different API models are both named {name!r}: rename one")
        components[name] = schema


def _schema(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    from pydantic import TypeAdapter

    schema = TypeAdapter(tp).json_schema(ref_template=REF, mode="serialization")
    _add_components(components, schema.pop("$defs", {}))
    return schema


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": {},
    }
    if endpoint.roles:
        op["x-roles"] = list(endpoint.roles)
    if endpoint.auth == "staff":
        op["security"] = [{"staffToken": []}, {"session": []}]
    elif endpoint.auth == "device":
        op["security"] = [{"deviceCredential": []}]
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        qschema = endpoint.query.model_json_schema(ref_template=REF)
        _add_components(components, qschema.pop("$defs", {}))
        required = set(qschema.get("required", []))
        for name, prop in qschema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if params:
        op["parameters"] = params
    if endpoint.body is not None:
        schema = endpoint.body.model_json_schema(ref_template=REF, mode="validation")
        _add_components(components, schema.pop("$defs", {}))
        _add_components(components, {endpoint.body.__name__: schema})
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=endpoint.body.__name__)}}
            },
        }
    elif endpoint.raw_body:
        op["requestBody"] = {"required": True, "content": {endpoint.raw_body: {"schema": {}}}}
    status = str(endpoint.status)
    if endpoint.response is not None:
        op["responses"][status] = {
            "description": "OK",
            "content": {endpoint.content_type: {"schema": _schema(endpoint.response, components)}},
        }
    elif endpoint.content_type != "application/json":
        op["responses"][status] = {
            "description": "OK",
            "content": {endpoint.content_type: {"schema": {"type": "string"}}},
        }
    else:
        op["responses"]["204" if endpoint.status == 200 else status] = {"description": "No content"}
    error_ref = {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}
    codes = {400, 422, *endpoint.errors}
    if endpoint.auth != "public":
        codes |= {401, 403}
    for code in sorted(codes):
        op["responses"][str(code)] = {"description": "Error", "content": error_ref}
    return op


OPENAPI_DOC: web.AppKey[dict[str, Any]] = web.AppKey("openapi_doc")


async def serve_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOC])
