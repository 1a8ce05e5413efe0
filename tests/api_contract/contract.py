"""Check real requests and responses against the OpenAPI document the hub serves.

`ContractClient` wraps the test client: each call finds its operation in the document,
validates the JSON request body against `requestBody` (unless the test sends bad input on
purpose), sends it, and checks that the status is one the operation declares and that the body
matches the schema declared for that status. Schemas are made strict first (objects that list
their properties get `additionalProperties: false`), so a field a handler adds without
declaring it fails too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator


class ContractViolation(AssertionError):
    pass


def strict(schema: Any) -> Any:
    """A copy in which every object schema with `properties` forbids undeclared properties."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@dataclass
class Operation:
    method: str
    template: str
    spec: dict[str, Any]
    pattern: re.Pattern[str]


@dataclass
class Exchange:
    method: str
    path: str
    request: Any
    status: int
    response: Any


@dataclass
class ContractClient:
    client: TestClient[Any, Any]
    doc: dict[str, Any]
    covered: set[tuple[str, str]] = field(default_factory=set)
    transcript: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.components = strict(self.doc.get("components", {}))
        self.operations: list[Operation] = []
        for template, item in self.doc["paths"].items():
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            for method, spec in item.items():
                self.operations.append(Operation(method.upper(), template, spec, re.compile(regex)))
        # literal paths win over templated ones (/api/broadcasts/preview vs /{id})
        self.operations.sort(key=lambda op: op.template.count("{"))

    @classmethod
    async def load(cls, client: TestClient[Any, Any]) -> ContractClient:
        resp = await client.get("/api/openapi.json")
        assert resp.status == 200
        return cls(client, await resp.json())

    def operation(self, method: str, path: str) -> Operation:
        bare = path.split("?", 1)[0]
        for op in self.operations:
            if op.method == method and op.pattern.match(bare):
                return op
        raise ContractViolation(f"{method} {bare} is not in the OpenAPI document")

    def validate(self, schema: dict[str, Any], instance: Any, what: str) -> None:
        validator = Draft202012Validator({**strict(schema), "components": self.components})
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            details = "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
            raise ContractViolation(f"{what} does not match the document: {details}")

    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        raw: bytes | None = None,
        content_type: str | None = None,
        valid_request: bool = True,
    ) -> tuple[int, Any]:
        op = self.operation(method, path)
        what = f"{method} {op.template}"
        if json_body is not None and valid_request:
            content = op.spec.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                raise ContractViolation(f"{what} declares no JSON request body")
            self.validate(content["application/json"]["schema"], json_body, f"request to {what}")
        kw: dict[str, Any] = {"headers": dict(headers or {})}
        if json_body is not None:
            kw["json"] = json_body
        elif raw is not None:
            kw["data"] = raw
            if content_type:
                kw["headers"]["Content-Type"] = content_type
        resp = await self.client.request(method, path, **kw)
        text = await resp.text()
        declared = op.spec.get("responses", {})
        if str(resp.status) not in declared:
            raise ContractViolation(
                f"{what} answered {resp.status}, declared: {sorted(declared)}: {text[:300]}"
            )
        spec = declared[str(resp.status)]
        body: Any = None
        if "content" in spec:
            media = resp.content_type
            if media not in spec["content"]:
                raise ContractViolation(
                    f"{what} {resp.status} sent {media}, declared {list(spec['content'])}"
                )
            if media == "application/json":
                body = json.loads(text)
                self.validate(
                    spec["content"][media].get("schema", {}), body, f"{what} {resp.status} body"
                )
            else:
                body = text
        elif text:
            raise ContractViolation(
                f"{what} {resp.status} declares no body but sent {text[:100]!r}"
            )
        self.covered.add((method, op.template))
        self.transcript.append(Exchange(method, path, json_body, resp.status, body))
        return resp.status, body

    async def expect(self, status: int, method: str, path: str, **kw: Any) -> Any:
        got, body = await self.call(method, path, **kw)
        if got != status:
            raise AssertionError(f"{method} {path}: expected {status}, got {got}: {body}")
        return body
