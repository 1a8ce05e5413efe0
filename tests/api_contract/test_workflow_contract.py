"""The PR staff's workflow, request by request, checked against the served OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .contract import ContractClient

H = dict[str, dict[str, str]]
DRAFT: dict[str, Any] = {
    "title": "3歳児健診のお知らせ",
    "topic": "childcare",
    "priority": "normal",
    "content": {
        "ja": {"title": "3歳児健診のお知らせ", "body": "{{ resident.ward or '市内' }}の日程です。"},
        "en": {"title": "Check-ups", "body": "Dates for {{ resident.ward or 'the city' }}."},
    },
    "segment": {
        "type": "all",
        "rules": [
            {"type": "child_age", "min": {"years": 3}, "max": {"years": 3, "months": 11}},
            {"type": "wards", "codes": ["141313", "141321"]},
            {"type": "languages", "codes": ["ja", "en"]},
        ],
    },
    "channels": ["line", "fcm", "email"],
    "channel_policy": "preferred",
}


def later(hours: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat(timespec="seconds")


async def test_create_preview_submit_approve_schedule(
    contract: ContractClient, staff_headers: H
) -> None:
    pr, approver, analyst = staff_headers["pr"], staff_headers["approver"], staff_headers["analyst"]
    b = await contract.expect(201, "POST", "/api/broadcasts", headers=pr, json_body=DRAFT)
    path = f"/api/broadcasts/{b['id']}"
    await contract.expect(200, "GET", path, headers=analyst)
    b = await contract.expect(
        200, "PATCH", path, headers=pr, json_body={"version": 1, "title": "3歳児健診（4月）"}
    )
    await contract.expect(200, "GET", path + "/reach", headers=pr)
    reach_body = {"segment": DRAFT["segment"], "channels": ["line", "email"], "topic": "childcare"}
    await contract.expect(200, "POST", "/api/segments/reach", headers=pr, json_body=reach_body)
    await contract.expect(
        200,
        "POST",
        path + "/preview",
        headers=pr,
        json_body={"language": "en", "ward_code": "141321"},
    )
    unsaved = {"content": DRAFT["content"], "channels": ["line", "fcm", "email"], "title": "t"}
    await contract.expect(200, "POST", "/api/broadcasts/preview", headers=pr, json_body=unsaved)
    b = await contract.expect(
        200, "POST", path + "/submit", headers=pr, json_body={"version": b["version"]}
    )
    b = await contract.expect(
        200,
        "POST",
        path + "/approve",
        headers=approver,
        json_body={"version": b["version"], "comment": "OK"},
    )
    b = await contract.expect(
        200,
        "POST",
        path + "/schedule",
        headers=pr,
        json_body={"version": b["version"], "send_at": later(2)},
    )
    assert b["status"] == "scheduled"
    b = await contract.expect(
        200,
        "POST",
        path + "/schedule",
        headers=pr,
        json_body={"version": b["version"], "send_at": later(3)},
    )
    await contract.expect(200, "GET", path + "/history", headers=analyst)
    await contract.expect(200, "GET", "/api/broadcasts?status=scheduled&limit=10", headers=analyst)
    b = await contract.expect(
        200, "POST", path + "/withdraw", headers=pr, json_body={"version": b["version"]}
    )
    b = await contract.expect(
        200, "POST", path + "/submit", headers=pr, json_body={"version": b["version"]}
    )
    b = await contract.expect(
        200,
        "POST",
        path + "/reject",
        headers=approver,
        json_body={"version": b["version"], "comment": "再確認"},
    )
    await contract.expect(
        200,
        "POST",
        path + "/cancel",
        headers=pr,
        json_body={"version": b["version"], "reason": "中止"},
    )
    await contract.expect(200, "GET", "/api/message-templates", headers=pr)
    emergency = {"params": {"area": "川崎区"}, "segment": {"type": "wards", "codes": ["141313"]}}
    await contract.expect(
        201,
        "POST",
        "/api/message-templates/evacuation_order/broadcasts",
        headers=staff_headers["disaster"],
        json_body=emergency,
    )


async def test_error_answers_are_declared(contract: ContractClient, staff_headers: H) -> None:
    pr, approver = staff_headers["pr"], staff_headers["approver"]
    bad_ward = {**DRAFT, "segment": {"type": "wards", "codes": ["999999"]}}
    body = await contract.expect(422, "POST", "/api/broadcasts", headers=pr, json_body=bad_ward)
    assert "segment.wards.codes.0" in body["error"]["fields"]
    upside_down = {
        **DRAFT,
        "segment": {"type": "child_age", "min": {"years": 5}, "max": {"years": 3}},
    }
    body = await contract.expect(422, "POST", "/api/broadcasts", headers=pr, json_body=upside_down)
    assert "segment.child_age.max" in body["error"]["fields"]
    syntax = {**DRAFT, "content": {"ja": {"title": "t", "body": "{% if %}"}}}
    body = await contract.expect(422, "POST", "/api/broadcasts", headers=pr, json_body=syntax)
    assert (
        body["error"]["code"] == "template_error" and "content.ja.body" in body["error"]["fields"]
    )
    wrong_shape = {**DRAFT, "channels": ["sms"]}
    await contract.expect(
        422, "POST", "/api/broadcasts", headers=pr, json_body=wrong_shape, valid_request=False
    )
    await contract.expect(
        400, "POST", "/api/broadcasts", headers=pr, raw=b"{", content_type="application/json"
    )
    await contract.expect(
        415, "POST", "/api/broadcasts", headers=pr, raw=b"x", content_type="text/plain"
    )
    await contract.expect(401, "POST", "/api/broadcasts", json_body=DRAFT)
    await contract.expect(
        403, "POST", "/api/broadcasts", headers=staff_headers["analyst"], json_body=DRAFT
    )
    oversize = {**DRAFT, "content": {"ja": {"title": "t", "body": "長" * 5000}}}
    b = await contract.expect(201, "POST", "/api/broadcasts", headers=pr, json_body=oversize)
    path = f"/api/broadcasts/{b['id']}"
    body = await contract.expect(
        422, "POST", path + "/submit", headers=pr, json_body={"version": 1}
    )
    assert "content.ja.line.messages.0.text" in body["error"]["fields"]
    await contract.expect(
        409, "POST", path + "/approve", headers=approver, json_body={"version": 1}
    )
    await contract.expect(409, "PATCH", path, headers=pr, json_body={"version": 7, "title": "x"})
    await contract.expect(404, "GET", "/api/broadcasts/424242", headers=pr)
    await contract.expect(404, "POST", "/api/broadcasts/424242/preview", headers=pr, json_body={})
    await contract.expect(409, "POST", path + "/test-send", headers=pr)
    await contract.expect(
        404,
        "POST",
        "/api/message-templates/nope/broadcasts",
        headers=staff_headers["disaster"],
        json_body={},
    )


async def test_staff_and_test_endpoints(contract: ContractClient, staff_headers: H) -> None:
    admin, pr = staff_headers["admin"], staff_headers["pr"]
    user = await contract.expect(
        201,
        "POST",
        "/api/staff",
        headers=admin,
        json_body={"login": "kato", "display_name": "加藤", "roles": ["pr"]},
    )
    await contract.expect(200, "GET", "/api/staff", headers=admin)
    await contract.expect(
        200,
        "PATCH",
        f"/api/staff/{user['id']}",
        headers=admin,
        json_body={"roles": ["pr", "analyst"]},
    )
    token = await contract.expect(
        201, "POST", f"/api/staff/{user['id']}/tokens", headers=admin, json_body={"name": "ci"}
    )
    await contract.expect(200, "GET", f"/api/staff/{user['id']}/tokens", headers=admin)
    await contract.expect(
        204, "DELETE", f"/api/staff/{user['id']}/tokens/{token['id']}", headers=admin
    )
    await contract.expect(
        409,
        "POST",
        "/api/staff",
        headers=admin,
        json_body={"login": "kato", "display_name": "x", "roles": ["pr"]},
    )
    await contract.expect(
        404, "PATCH", "/api/staff/9999", headers=admin, json_body={"active": False}
    )
    await contract.expect(403, "GET", "/api/staff", headers=pr)
    endpoint = {"channel": "email", "address": "pr@example.jp", "label": "自分"}
    made = await contract.expect(
        201, "POST", "/api/me/test-endpoints", headers=pr, json_body=endpoint
    )
    await contract.expect(409, "POST", "/api/me/test-endpoints", headers=pr, json_body=endpoint)
    await contract.expect(200, "GET", "/api/me/test-endpoints", headers=pr)
    b = await contract.expect(201, "POST", "/api/broadcasts", headers=pr, json_body=DRAFT)
    sent = await contract.expect(200, "POST", f"/api/broadcasts/{b['id']}/test-send", headers=pr)
    assert [r["channel"] for r in sent["results"]] == ["email"]
    await contract.expect(204, "DELETE", f"/api/me/test-endpoints/{made['id']}", headers=pr)
    await contract.expect(404, "DELETE", f"/api/me/test-endpoints/{made['id']}", headers=pr)
