"""A sweep of hostile requests over every operation the API documents: none gets a 500.

Bodies that are not JSON, JSON of the wrong shape, every documented property given a value
of the wrong type, path parameters that are not ids or are out of range, and query
parameters that are not what they claim: each must be answered 4xx (or 2xx where it is
harmless), never by an unhandled error.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from aiohttp.test_utils import TestClient

from .contract import ContractClient, Operation
from .test_workflow_contract import DRAFT

H = dict[str, dict[str, str]]

BODIES: list[bytes] = [
    b"",
    b"not json",
    b'{"unterminated": ',
    b"[]",
    b"null",
    b"12",
    b'"text"',
    b"{}",
    json.dumps({"\u0000": "\ud800"}).encode(),
    b"[" * 5000 + b"]" * 5000,
]
WRONG_VALUES: list[Any] = [None, 10**30, -1, "", "\u0000", "x" * 20_000, [], {}, True, 1.5]
PATH_VALUES = ["0", "-1", "99999999999999999999999", "abc", "%00", "1.5"]
QUERY_VALUES = ["", "abc", "-1", "99999999999999999999999", "2026-13-45", "\u0000"]


def _path(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def _properties(op_spec: dict[str, Any], contract: ContractClient) -> list[str]:
    content = op_spec.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = contract.doc["components"]["schemas"][name]
    return sorted(schema.get("properties", {}))


async def test_no_hostile_request_gets_a_server_error(
    client: TestClient[Any, Any], contract: ContractClient, staff_headers: H
) -> None:
    admin = staff_headers["admin"]
    failures: list[str] = []

    async def probe(op: Operation, path: str, **kwargs: Any) -> None:
        method = op.method
        async with client.request(method, path, headers=admin, **kwargs) as response:
            declared = op.spec["responses"]  # e.g. 503 while LIFF is not configured
            if response.status >= 500 and str(response.status) not in declared:
                sent = kwargs.get("data", kwargs.get("params", ""))
                failures.append(f"{method} {path} {sent!r:.60} → {response.status}")

    # One real draft, so that requests naming it get past "not found" to their bodies.
    draft = await contract.expect(201, "POST", "/api/broadcasts", headers=admin, json_body=DRAFT)
    existing = str(draft["id"])
    for op in contract.operations:
        method, template = op.method, op.template
        for value in [*PATH_VALUES, existing] if "{" in template else ["-"]:
            path = _path(template, value)
            if method == "GET":
                for param in op.spec.get("parameters", []):
                    if param.get("in") == "query":
                        for query in QUERY_VALUES:
                            await probe(op, path, params={param["name"]: query})
                await probe(op, path)
                continue
            for body in BODIES:
                await probe(op, path, data=body)
        if method == "GET":
            continue
        path = _path(template, existing)
        for prop, value in itertools.product(_properties(op.spec, contract), WRONG_VALUES):
            await probe(op, path, data=json.dumps({prop: value}))
    assert not failures, "\n".join(failures[:40])
