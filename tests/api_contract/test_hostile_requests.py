"""A sweep of hostile requests over every operation the API documents: none gets a 500.

Bodies that are not JSON, JSON of the wrong shape, every documented property given a value
of the wrong type, path parameters that are not ids or are out of range, and query
parameters that are not what they claim: each must be answered 4xx (or 2xx where it is
harmless), never by an unhandled error.
"""

from __future__ import annotations

import asyncio
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
    b"[" * 5000 + b"]" * 5000,  # deeper than the parser goes
    b"[" * 980 + b"]" * 980,  # about as deep as the parser goes inside a request
    b'{"a":' * 490 + b"1" + b"}" * 490,
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
    admin = {**staff_headers["admin"], "Content-Type": "application/json"}
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


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [prefix] + [p for k, v in value.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [prefix] + [p for i, v in enumerate(value) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


async def test_a_valid_broadcast_with_any_one_value_made_wrong_gets_no_server_error(
    client: TestClient[Any, Any], contract: ContractClient, staff_headers: H
) -> None:
    """Every value inside a real broadcast body (segment rules, content, ages…), one at a
    time, replaced by a value of the wrong type, size or range."""
    admin = {**staff_headers["admin"], "Content-Type": "application/json"}
    draft = await contract.expect(201, "POST", "/api/broadcasts", headers=admin, json_body=DRAFT)
    unsaved = {k: DRAFT[k] for k in ("content", "channels", "title")}
    reach = {"segment": DRAFT["segment"], "channels": ["line", "email"], "topic": "childcare"}
    targets = [
        ("POST", "/api/broadcasts", DRAFT),
        ("PATCH", f"/api/broadcasts/{draft['id']}", {**DRAFT, "version": 1}),
        ("POST", "/api/broadcasts/preview", unsaved),
        ("POST", "/api/segments/reach", reach),
    ]
    failures: list[str] = []
    for method, path, body in targets:
        for where, wrong in itertools.product(_leaf_paths(body)[1:], WRONG_VALUES):
            sent = json.dumps(_replaced(body, where, wrong))
            async with client.request(method, path, headers=admin, data=sent) as response:
                if response.status >= 500:
                    failures.append(f"{method} {path} {where} = {wrong!r:.40} → {response.status}")
    assert not failures, "\n".join(failures[:40])


async def test_a_nul_character_is_refused_where_it_is(
    client: TestClient[Any, Any], staff_headers: H
) -> None:
    body = json.loads(json.dumps(DRAFT))
    body["content"]["ja"]["title"] = "健診\u0000"
    response = await client.post("/api/broadcasts", json=body, headers=staff_headers["pr"])
    assert response.status == 422
    assert (await response.json())["error"]["fields"] == {
        "content.ja.title": "NUL 文字は使えません / NUL characters are not allowed"
    }
    response = await client.get(
        "/api/broadcasts", params={"status": "draft\u0000"}, headers=staff_headers["pr"]
    )
    assert response.status == 422
    assert "status" in (await response.json())["error"]["fields"]


async def test_every_route_with_a_hostile_path_segment_gets_no_server_error(
    client: TestClient[Any, Any], staff_headers: H
) -> None:
    """Every route the app serves (tracking links, unsubscribe pages, console, API), each
    variable part of its path given hostile values, read and posted, with staff auth and
    without."""
    hostile = [*PATH_VALUES, "x" * 5000, "%F0%9F%92%A9", "..%2F..%2Fetc", "%FF%FE", "a.gif"]
    failures: list[str] = []
    for route in client.server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        formatter = info.get("formatter")
        if not formatter or route.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            continue
        for value in hostile:
            path = re.sub(r"\{[^}]+\}", value, formatter)
            for headers in ({}, staff_headers["admin"]):
                async with client.request(route.method, path, headers=headers) as response:
                    if response.status >= 500 and response.status != 503:
                        failures.append(f"{route.method} {path[:80]} → {response.status}")
    assert not failures, "\n".join(sorted(set(failures))[:40])


async def test_a_template_nested_too_deep_is_a_field_error_when_saved(
    client: TestClient[Any, Any], staff_headers: H
) -> None:
    body = json.loads(json.dumps(DRAFT))
    body["content"]["ja"]["body"] = "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"
    response = await client.post("/api/broadcasts", json=body, headers=staff_headers["pr"])
    assert response.status == 422
    assert "content.ja.body" in (await response.json())["error"]["fields"]


async def test_raw_header_garbage_gets_no_server_error(
    client: TestClient[Any, Any], staff_headers: H
) -> None:
    """Bytes a well-behaved client library would refuse to send, written to the socket."""
    token = staff_headers["admin"]["Authorization"].encode()
    heads = [
        b"Authorization: Bearer \x01abc",
        b"Authorization: Bearer " + b"A" * 10_000,
        b"Authorization: Basic Zm9vOmJhcg==",
        b"Authorization: Bearer \xff\xfe",
        b"Authorization: " + token + b"\x7f",
        b"Cookie: hub_session=\xff\xfe; hub_lang=\x01",
        b"Cookie: hub_session=" + b"x" * 4000,
        b"Accept-Language: " + b"ja;q=abc," * 500,
        b"Content-Type: application/json; charset=\xff",
    ]
    paths = [b"/api/broadcasts", b"/console", b"/console/login", b"/api/app/devices", b"/healthz"]
    failures = []
    for path, head, method in itertools.product(paths, heads, (b"GET", b"POST")):
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        writer.write(
            b"%b %b HTTP/1.1\r\nHost: hub\r\n%b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
            % (method, path, head)
        )
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        if answer[9:10] == b"5":
            failures.append(f"{method!r} {path!r} {head[:50]!r} → {answer[9:12]!r}")
    assert not failures, "\n".join(failures)
