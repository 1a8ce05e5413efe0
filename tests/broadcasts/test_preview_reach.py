"""Reach estimates and previews over HTTP, on a small registry."""

from __future__ import annotations

import datetime as dt
import uuid

from notify.models import Child, Consent, Endpoint, Resident

from .conftest import Api


async def add_family(
    api: Api, ward: str, language: str, birth: tuple[int, int], channels: list[str]
) -> int:
    async with api.db.transaction() as session:
        resident = Resident(public_id=str(uuid.uuid4()), ward_code=ward, language=language)
        resident.children.append(
            Child(
                birth_year=birth[0],
                birth_month=birth[1],
                birth_month_index=birth[0] * 12 + birth[1] - 1,
            )
        )
        for channel in channels:
            resident.endpoints.append(
                Endpoint(
                    channel=channel, address=f"{channel}-{uuid.uuid4()}", consent=Consent.GRANTED
                )
            )
        session.add(resident)
        await session.flush()
        return resident.id


def three_years_ago() -> tuple[int, int]:
    today = dt.datetime.now(dt.UTC)
    return today.year - 3, today.month


async def test_reach_of_a_saved_broadcast_and_of_an_unsaved_segment(api: Api) -> None:
    born = three_years_ago()
    await add_family(api, "141313", "ja", born, ["line", "email"])
    await add_family(api, "141321", "en", born, ["fcm"])
    await add_family(api, "141321", "ja", born, [])
    await add_family(api, "141356", "ja", born, ["line"])  # another ward
    await add_family(api, "141313", "ja", (born[0] - 5, born[1]), ["line"])  # child too old
    b = await api.draft(topic=None)
    reach = await api.ok("analyst", "GET", f"/api/broadcasts/{b['id']}/reach")
    assert (reach["total"], reach["reachable"]) == (3, 2)
    assert reach["by_channel"] == {"line": 1, "fcm": 1, "email": 0}  # preferred: LINE first
    assert reach["by_ward"] == {"141313": 1, "141321": 1}
    body = {"segment": {"type": "languages", "codes": ["ja"]}, "channels": ["line", "email"]}
    loose = await api.ok("pr", "POST", "/api/segments/reach", body)
    assert (loose["total"], loose["by_channel"], loose["endpoints"]) == (
        4,
        {"line": 3, "email": 1},
        {"line": 3, "email": 1},
    )
    bad = await api.call(
        "pr", "POST", "/api/segments/reach", {**body, "segment": {"type": "wards", "codes": ["1"]}}
    )
    assert bad.status == 422 and "segment.wards.codes.0" in bad.fields
    bad_topic = await api.call("pr", "POST", "/api/segments/reach", {**body, "topic": "nope"})
    assert bad_topic.status == 422 and "topic" in bad_topic.fields


async def test_preview_uses_a_sample_resident_from_the_segment(api: Api) -> None:
    resident_id = await add_family(api, "141321", "ja", three_years_ago(), ["line"])
    b = await api.draft(topic=None)
    preview = await api.ok("pr", "POST", f"/api/broadcasts/{b['id']}/preview", {})
    assert preview["sample"] == {
        "resident_id": resident_id,
        "ward_code": "141321",
        "language": "ja",
    }
    assert preview["line"]["messages"][0]["text"].startswith(
        "3歳児健診のお知らせ\n\n幸区の3歳児健診"
    )
    assert preview["fcm"]["data"]["broadcast_id"] == str(b["id"])
    assert (
        preview["email"]["subject"] == "3歳児健診のお知らせ" and "幸区" in preview["email"]["html"]
    )
    assert preview["problems"] == {}
    english = await api.ok(
        "analyst",
        "POST",
        f"/api/broadcasts/{b['id']}/preview",
        {"language": "en", "ward_code": "141372"},
    )
    assert (
        english["line"]["messages"][0]["text"] == "Check-ups for 3-year-olds\n\nDates for Asao-ku."
    )
    missing = await api.call(
        "pr", "POST", f"/api/broadcasts/{b['id']}/preview", {"resident_id": 9999}
    )
    assert missing.status == 404


async def test_preview_of_unsaved_content_reports_problems(api: Api) -> None:
    body = {
        "title": "t",
        "content": {"ja": {"title": "t", "body": "あ" * 4999, "push": {"title": "短い"}}},
        "channels": ["line", "fcm"],
    }
    preview = await api.ok("pr", "POST", "/api/broadcasts/preview", body)
    assert preview["sample"]["resident_id"] is None
    assert preview["line"] is None and "content.ja.line.messages.0.text" in preview["problems"]
    assert preview["fcm"]["title"] == "短い"
    syntax = await api.call(
        "pr",
        "POST",
        "/api/broadcasts/preview",
        {**body, "content": {"ja": {"title": "{{", "body": "b"}}},
    )
    assert syntax.status == 422 and "content.ja.title" in syntax.fields


async def test_prepared_messages_make_emergency_drafts(api: Api) -> None:
    listing = await api.ok("analyst", "GET", "/api/message-templates")
    assert "evacuation_order" in {m["key"] for m in listing}
    made = await api.ok(
        "disaster", "POST", "/api/message-templates/evacuation_order/broadcasts",
        {"params": {"area": "川崎区大師地区"}, "segment": {"type": "wards", "codes": ["141313"]}},
        status=201,
    )  # fmt: skip
    assert (made["priority"], made["topic"], made["status"]) == ("emergency", "disaster", "draft")
    assert made["content"]["ja"]["title"] == "【避難指示】川崎区大師地区"
    assert made["title"] == "避難指示（警戒レベル4）: 川崎区大師地区"
    by_pr = await api.call(
        "pr",
        "POST",
        "/api/message-templates/evacuation_order/broadcasts",
        {"params": {"area": "x"}},
    )
    assert by_pr.status == 403
    missing = await api.call(
        "disaster", "POST", "/api/message-templates/evacuation_order/broadcasts", {"params": {}}
    )
    assert missing.status == 422 and "params.area" in missing.fields
    unknown = await api.call("disaster", "POST", "/api/message-templates/nope/broadcasts", {})
    assert unknown.status == 404
