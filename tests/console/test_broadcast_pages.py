"""Compose → submit → approve → schedule through the console's forms, against the real core."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from sqlalchemy import select

from notify.models import AuditEntry, Broadcast
from tests.console.conftest import Console, csrf_from
from tests.console.test_compose_page import compose_data

LATER = (dt.datetime.now(ZoneInfo("Asia/Tokyo")) + dt.timedelta(days=30)).strftime("%Y-%m-%dT09:00")


async def _create(console: Console, token: str, **extra: object) -> int:
    _, location, _ = await console.post_form(
        "/console/broadcasts/new", compose_data(token, action="save", **extra)
    )
    match = re.fullmatch(r"/console/broadcasts/(\d+)\?msg=saved", location)
    assert match, location
    return int(match.group(1))


async def _version(console: Console, broadcast_id: int) -> int:
    async with console.db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.version


async def _status(console: Console, broadcast_id: int) -> str:
    async with console.db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.status


async def test_whole_review_flow(console: Console, redis_url: str) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    html = await console.get_html(f"/console/broadcasts/{bid}?msg=saved")
    assert "保存しました。" in html and "下書き" in html
    assert 'class="line-bubble"' in html
    assert f'action="/console/broadcasts/{bid}/submit"' in html
    await console.post_form(
        f"/console/broadcasts/{bid}/submit",
        {"csrf_token": token, "version": await _version(console, bid)},
    )
    assert await _status(console, bid) == "submitted"

    console.client.session.cookie_jar.clear()
    token = await console.sign_in("approver")
    queue = await console.get_html("/console/approvals")
    assert "乳幼児健診" in queue and 'class="notification-title"' in queue
    _, location, _ = await console.post_form(
        f"/console/broadcasts/{bid}/approve",
        {
            "csrf_token": token,
            "version": await _version(console, bid),
            "comment": "確認しました",
            "return_to": "/console/approvals",
        },
    )
    assert location == "/console/approvals?msg=approved"
    assert await _status(console, bid) == "approved"

    console.client.session.cookie_jar.clear()
    token = await console.sign_in("pr")
    await console.post_form(
        f"/console/broadcasts/{bid}/schedule",
        {
            "csrf_token": token,
            "version": await _version(console, bid),
            "when": "at",
            "send_at": LATER,
        },
    )
    assert await _status(console, bid) == "scheduled"
    version = await _version(console, bid)
    redis = aioredis.from_url(redis_url)
    try:
        assert await redis.exists(f"arq:job:broadcast:{bid}:v{version}")
    finally:
        await redis.aclose()
    html = await console.get_html(f"/console/broadcasts/{bid}")
    assert LATER.replace("T", " ") in html and "日時を変更する" in html
    async with console.db.sessionmaker() as session:
        actions = (
            await session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(bid)))
        ).all()
    assert {
        "broadcast.create",
        "broadcast.submit",
        "broadcast.approve",
        "broadcast.schedule",
    } <= set(actions)


async def test_nobody_approves_their_own_broadcast(console: Console) -> None:
    token = await console.sign_in("admin")  # admin passes every role check, even so
    bid = await _create(console, token)
    await console.post_form(
        f"/console/broadcasts/{bid}/submit",
        {"csrf_token": token, "version": await _version(console, bid)},
    )
    html = await console.get_html(f"/console/broadcasts/{bid}")
    assert "自分が作成・申請した配信は承認できません" in html
    assert f'action="/console/broadcasts/{bid}/approve"' not in html
    _, _, html = await console.post_form(
        f"/console/broadcasts/{bid}/approve",
        {"csrf_token": token, "version": await _version(console, bid)},
        status=403,
    )
    assert 'role="alert"' in html and "承認できません" in html
    assert await _status(console, bid) == "submitted"


async def test_reject_needs_a_comment_and_shows_it_to_the_author(console: Console) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    await console.post_form(
        f"/console/broadcasts/{bid}/submit",
        {"csrf_token": token, "version": await _version(console, bid)},
    )
    console.client.session.cookie_jar.clear()
    token = await console.sign_in("approver")
    data = {"csrf_token": token, "version": await _version(console, bid), "comment": ""}
    await console.post_form(f"/console/broadcasts/{bid}/reject", data, status=422)
    assert await _status(console, bid) == "submitted"
    data["comment"] = "日付を確認してください"
    await console.post_form(f"/console/broadcasts/{bid}/reject", data)
    assert await _status(console, bid) == "draft"
    html = await console.get_html(f"/console/broadcasts/{bid}")
    assert "日付を確認してください" in html


async def test_stale_version_is_refused(console: Console) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    _, _, html = await console.post_form(
        f"/console/broadcasts/{bid}/submit", {"csrf_token": token, "version": 99}, status=409
    )
    assert "再読み込み" in html


async def test_edit_and_cancel_a_draft(console: Console) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    html = await console.get_html(f"/console/broadcasts/{bid}/edit")
    assert 'value="乳幼児健診のお知らせ"' in html
    data = compose_data(csrf_from(html), action="save", ja_title="変更後の見出し")
    data["version"] = await _version(console, bid)
    await console.post_form(f"/console/broadcasts/{bid}/edit", data)
    async with console.db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, bid)
        assert broadcast is not None and broadcast.content["ja"]["title"] == "変更後の見出し"
    await console.post_form(
        f"/console/broadcasts/{bid}/cancel",
        {"csrf_token": token, "version": await _version(console, bid), "reason": "重複"},
    )
    assert await _status(console, bid) == "cancelled"


async def test_email_preview_is_sandboxed(console: Console) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    resp = await console.client.get(f"/console/broadcasts/{bid}/email/ja")
    assert resp.status == 200
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert "乳幼児健診のお知らせ" in await resp.text()


async def test_list_filters_by_status(console: Console) -> None:
    token = await console.sign_in("pr")
    await _create(console, token)
    html = await console.get_html("/console/broadcasts?status=draft")
    assert "乳幼児健診" in html
    html = await console.get_html("/console/broadcasts?status=completed")
    assert "乳幼児健診" not in html


async def test_reschedule_moves_the_time_and_bumps_the_version(console: Console) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    async with console.db.transaction() as session:  # as if approved by someone else
        broadcast = await session.get(Broadcast, bid)
        assert broadcast is not None
        broadcast.status, broadcast.version = "approved", broadcast.version + 1
    first = {"csrf_token": token, "when": "at", "send_at": LATER}
    await console.post_form(
        f"/console/broadcasts/{bid}/schedule", {**first, "version": await _version(console, bid)}
    )
    version = await _version(console, bid)
    later = LATER.replace("T09:00", "T15:30")
    await console.post_form(
        f"/console/broadcasts/{bid}/schedule",
        {**first, "send_at": later, "version": version},
    )
    assert await _version(console, bid) == version + 1
    html = await console.get_html(f"/console/broadcasts/{bid}")
    assert later.replace("T", " ") in html
    async with console.db.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "broadcast.reschedule" in actions


async def test_pause_resume_and_stop_while_sending(console: Console) -> None:
    token = await console.sign_in("pr")
    bid = await _create(console, token)
    async with console.db.transaction() as session:  # as the delivery engine leaves it
        broadcast = await session.get(Broadcast, bid)
        assert broadcast is not None
        broadcast.status = "sending"
    html = await console.get_html(f"/console/broadcasts/{bid}")
    assert f'data-progress-url="/api/broadcasts/{bid}/delivery"' in html
    assert "一時停止" in html
    await console.post_form(f"/console/broadcasts/{bid}/delivery/pause", {"csrf_token": token})
    assert await _status(console, bid) == "paused"
    await console.post_form(f"/console/broadcasts/{bid}/delivery/resume", {"csrf_token": token})
    assert await _status(console, bid) == "sending"
    await console.post_form(f"/console/broadcasts/{bid}/delivery/cancel", {"csrf_token": token})
    assert await _status(console, bid) == "cancelled"
    _, _, html = await console.post_form(
        f"/console/broadcasts/{bid}/delivery/resume", {"csrf_token": token}, status=409
    )
    assert 'role="alert"' in html
