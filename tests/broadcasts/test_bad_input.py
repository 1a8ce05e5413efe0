"""Bad input gets a 4xx naming the field path and the reason."""

from __future__ import annotations

from typing import Any

from .conftest import Api, draft_body


async def rejected(api: Api, body: dict[str, Any], status: int = 422) -> dict[str, str]:
    reply = await api.call("pr", "POST", "/api/broadcasts", body)
    assert reply.status == status, reply.body
    return reply.fields


async def test_unknown_ward_code(api: Api) -> None:
    segment = {"type": "all", "rules": [{"type": "wards", "codes": ["141313", "141399"]}]}
    fields = await rejected(api, draft_body(segment=segment))
    assert "unknown ward code '141399'" in fields["segment.all.rules.0.wards.codes.1"]


async def test_upside_down_age_range(api: Api) -> None:
    segment = {"type": "child_age", "min": {"years": 5}, "max": {"years": 3, "months": 6}}
    fields = await rejected(api, draft_body(segment=segment))
    assert "below lower bound" in fields["segment.child_age.max"]


async def test_shape_errors_in_the_segment_and_content(api: Api) -> None:
    body = draft_body(
        segment={"type": "any", "rules": [{"type": "child_age", "min": {"months": 14}}]},
        content={"en": {"title": "t", "body": "b"}},
        channels=["line", "sms"],
    )
    fields = await rejected(api, body)
    assert "segment.any.rules.0.child_age.min.months" in fields
    assert "a Japanese version ('ja') is required" in fields["content"]
    assert "channels.1" in fields


async def test_template_syntax_error_and_refused_constructs(api: Api) -> None:
    content = {
        "ja": {"title": "t", "body": "{% if resident.ward %}閉じていない"},
        "en": {"title": "{% for x in range(9) %}{% endfor %}", "body": "b"},
    }
    fields = await rejected(api, draft_body(content=content))
    assert "syntax error" in fields["content.ja.body"]
    assert "loops" in fields["content.en.title"]


async def test_unknown_topic_and_language(api: Api) -> None:
    content = {"ja": {"title": "t", "body": "b"}, "fr": {"title": "t", "body": "b"}}
    fields = await rejected(api, draft_body(topic="sports", content=content))
    assert set(fields) == {"topic", "content.fr"}


async def test_oversize_and_undefined_variables_are_caught_at_submit(api: Api) -> None:
    content = {
        "ja": {"title": "t", "body": "あ" * 4999},
        "en": {"title": "t", "body": "{{ resident.name }}"},
    }
    b = await api.draft(content=content)
    reply = await api.call("pr", "POST", f"/api/broadcasts/{b['id']}/submit", {"version": 1})
    assert reply.status == 422
    assert "the limit is 5000" in reply.fields["content.ja.line.messages.0.text"]
    assert "no attribute 'name'" in reply.fields["content.en.body"]
    still = await api.ok("pr", "GET", f"/api/broadcasts/{b['id']}")
    assert still["status"] == "draft" and still["version"] == 1


async def test_malformed_requests(api: Api) -> None:
    resp = await api.client.post(
        "/api/broadcasts",
        data=b"{not json",
        headers={**api.headers["pr"], "Content-Type": "application/json"},
    )
    assert resp.status == 400
    resp = await api.client.post("/api/broadcasts", data=b"x", headers=api.headers["pr"])
    assert resp.status == 415
    fields = await rejected(api, {**draft_body(), "surprise": 1})
    assert "surprise" in fields
