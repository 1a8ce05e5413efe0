"""The broadcast lifecycle over HTTP: transitions, versions, four-eyes approval, audit."""

from __future__ import annotations

import datetime as dt

from .conftest import Api


def later(minutes: int = 60) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).isoformat()


async def test_create_submit_approve_schedule(api: Api) -> None:
    b = await api.draft()
    assert (b["status"], b["version"], b["created_by"]) == ("draft", 1, 1)
    assert "川崎区・幸区" in b["segment_description"]
    path = f"/api/broadcasts/{b['id']}"
    b = await api.ok("pr", "POST", path + "/submit", {"version": 1})
    assert (b["status"], b["version"], b["submitted_by"]) == ("submitted", 2, 1)
    b = await api.ok("approver", "POST", path + "/approve", {"version": 2, "comment": "OK"})
    assert (b["status"], b["version"], b["approved_by"], b["review_comment"]) == (
        "approved",
        3,
        3,
        "OK",
    )
    send_at = later()
    b = await api.ok("pr2", "POST", path + "/schedule", {"version": 3, "send_at": send_at})
    assert b["status"] == "scheduled" and b["version"] == 4
    assert dt.datetime.fromisoformat(b["send_at"]) == dt.datetime.fromisoformat(send_at)
    history = await api.ok("analyst", "GET", path + "/history")
    assert [(h["action"], h["actor_id"]) for h in history] == [
        ("broadcast.create", "1"),
        ("broadcast.submit", "1"),
        ("broadcast.approve", "3"),
        ("broadcast.schedule", "2"),
    ]
    assert all(h["actor_type"] == "staff" and h["at"] for h in history)


async def test_edit_only_as_draft_and_versions_must_match(api: Api) -> None:
    b = await api.draft()
    path = f"/api/broadcasts/{b['id']}"
    edited = await api.ok("pr2", "PATCH", path, {"version": 1, "title": "改題", "topic": None})
    assert (edited["title"], edited["topic"], edited["version"]) == ("改題", None, 2)
    stale = await api.call("pr", "PATCH", path, {"version": 1, "title": "x"})
    assert stale.status == 409 and "stale" in stale.fields["version"]
    await api.ok("pr", "POST", path + "/submit", {"version": 2})
    locked = await api.call("pr", "PATCH", path, {"version": 3, "title": "x"})
    assert locked.status == 409
    assert locked.fields["status"].startswith("is submitted; edit needs one of: draft")


async def test_approval_needs_another_person_and_the_right_role(api: Api) -> None:
    b = await api.draft(who="admin")
    path = f"/api/broadcasts/{b['id']}"
    await api.ok("admin", "POST", path + "/submit", {"version": 1})
    own = await api.call("admin", "POST", path + "/approve", {"version": 2})
    assert own.status == 403 and "approved_by" in own.fields
    for who in ("pr", "analyst", "disaster"):  # disaster only reviews emergencies
        assert (await api.call(who, "POST", path + "/approve", {"version": 2})).status == 403
    assert (await api.ok("approver", "POST", path + "/approve", {"version": 2}))[
        "status"
    ] == "approved"


async def test_reject_sends_back_to_draft_with_a_comment(api: Api) -> None:
    b = await api.draft()
    path = f"/api/broadcasts/{b['id']}"
    await api.ok("pr", "POST", path + "/submit", {"version": 1})
    missing = await api.call("approver", "POST", path + "/reject", {"version": 2})
    assert missing.status == 422 and "comment" in missing.fields
    b = await api.ok("approver", "POST", path + "/reject", {"version": 2, "comment": "日付を確認"})
    assert (b["status"], b["review_comment"], b["submitted_by"]) == ("draft", "日付を確認", None)
    b = await api.ok("pr", "PATCH", path, {"version": 3, "title": "修正版"})
    assert b["review_comment"] is None


async def test_transitions_that_are_not_allowed(api: Api) -> None:
    b = await api.draft()
    path = f"/api/broadcasts/{b['id']}"
    early = await api.call("pr", "POST", path + "/schedule", {"version": 1})
    assert (
        early.status == 409
        and "schedule needs one of: approved, scheduled" in early.fields["status"]
    )
    not_submitted = await api.call("approver", "POST", path + "/approve", {"version": 1})
    assert not_submitted.status == 409
    cancelled = await api.ok("pr", "POST", path + "/cancel", {"reason": "中止"})
    assert cancelled["status"] == "cancelled"
    again = await api.call("pr", "POST", path + "/cancel", {})
    assert again.status == 409
    assert (await api.call("pr", "POST", "/api/broadcasts/999/cancel", {})).status == 404


async def test_reschedule_cancel_and_withdraw_bump_the_version(api: Api) -> None:
    b = await api.approved()
    path = f"/api/broadcasts/{b['id']}"
    b = await api.ok(
        "pr", "POST", path + "/schedule", {"version": b["version"], "send_at": later(60)}
    )
    moved = await api.ok(
        "pr", "POST", path + "/schedule", {"version": b["version"], "send_at": later(120)}
    )
    assert moved["version"] == b["version"] + 1 and moved["status"] == "scheduled"
    back = await api.ok("pr", "POST", path + "/withdraw", {"version": moved["version"]})
    assert (back["status"], back["approved_by"]) == ("draft", None)
    history = await api.ok("pr", "GET", path + "/history")
    actions = [h["action"] for h in history]
    assert actions[-3:] == ["broadcast.schedule", "broadcast.reschedule", "broadcast.withdraw"]
    previous = dt.datetime.fromisoformat(history[-2]["detail"]["previous"])
    assert previous == dt.datetime.fromisoformat(b["send_at"])


async def test_send_at_must_be_sensible(api: Api) -> None:
    b = await api.approved()
    path = f"/api/broadcasts/{b['id']}"
    past = await api.call(
        "pr", "POST", path + "/schedule", {"version": b["version"], "send_at": later(-60)}
    )
    assert past.status == 422 and "send_at" in past.fields
    naive = await api.call(
        "pr",
        "POST",
        path + "/schedule",
        {"version": b["version"], "send_at": "2030-01-01T09:00:00"},
    )
    assert naive.status == 422 and "send_at" in naive.fields
    far = await api.call(
        "pr", "POST", path + "/schedule", {"version": b["version"], "send_at": later(60 * 24 * 400)}
    )
    assert far.status == 422


async def test_roles(api: Api) -> None:
    create = await api.call("analyst", "POST", "/api/broadcasts", {"title": "x"})
    assert create.status == 403
    assert (await api.call("approver", "POST", "/api/broadcasts", {"title": "x"})).status == 403
    listing = await api.ok("analyst", "GET", "/api/broadcasts")
    assert listing["total"] == 0
    emergency = await api.call("pr", "POST", "/api/broadcasts", _body(priority="emergency"))
    assert emergency.status == 403 and "priority" in emergency.fields
    normal_by_disaster = await api.call("disaster", "POST", "/api/broadcasts", _body())
    assert normal_by_disaster.status == 403
    e = await api.draft(who="disaster", priority="emergency", topic="disaster")
    assert e["priority"] == "emergency"
    b = await api.draft()
    for who, path in [
        ("disaster", f"/api/broadcasts/{b['id']}/submit"),
        ("analyst", f"/api/broadcasts/{b['id']}/cancel"),
    ]:
        assert (await api.call(who, "POST", path, {"version": 1})).status == 403
    assert (await api.client.get("/api/broadcasts")).status == 401


async def test_emergency_is_reviewed_by_another_disaster_member_or_an_approver(api: Api) -> None:
    e = await api.draft(who="disaster", priority="emergency", topic="disaster")
    path = f"/api/broadcasts/{e['id']}"
    await api.ok("disaster", "POST", path + "/submit", {"version": 1})
    assert (await api.call("disaster", "POST", path + "/approve", {"version": 2})).status == 403
    e = await api.ok("approver", "POST", path + "/approve", {"version": 2})
    e = await api.ok("disaster", "POST", path + "/schedule", {"version": e["version"]})
    assert e["status"] == "scheduled"  # no send_at: now


async def test_list_filters_and_pages(api: Api) -> None:
    first = await api.draft()
    second = await api.draft()
    await api.ok("pr", "POST", f"/api/broadcasts/{first['id']}/cancel", {})
    page = await api.ok("pr", "GET", "/api/broadcasts?limit=1")
    assert page["total"] == 2 and [i["id"] for i in page["items"]] == [second["id"]]
    drafts = await api.ok("pr", "GET", "/api/broadcasts?status=draft")
    assert [i["id"] for i in drafts["items"]] == [second["id"]]
    bad = await api.call("pr", "GET", "/api/broadcasts?status=nope&limit=0")
    assert bad.status == 422 and {"status", "limit"} <= set(bad.fields)


def _body(**overrides: object) -> dict[str, object]:
    from .conftest import draft_body

    return draft_body(**overrides)
