"""The disaster mode page: the switch with a required reason, role refusal, proposals,
emergency messages — through the mode area's own functions."""

from __future__ import annotations

import re

from sqlalchemy import select

from notify.mode.runtime import load_catalog
from notify.mode.tables import ModeMenu, ModeProposal, ModeState
from notify.models import AuditEntry, Broadcast
from notify.web.keys import SETTINGS
from tests.console.conftest import Console


async def mark_menus_synced(console: Console) -> None:
    """As if `python -m notify menus sync` had run: each configured menu has a LINE id."""
    async with console.db.transaction() as session:
        for menu in load_catalog(console.app[SETTINGS]).menus:
            session.add(
                ModeMenu(
                    key=menu.key, mode=menu.mode, rich_menu_id=f"richmenu-{menu.key}", digest="d"
                )
            )


async def mode_in_force(console: Console) -> str:
    async with console.db.sessionmaker() as session:
        state = await session.get(ModeState, 1)
    return "normal" if state is None else state.mode


async def test_switch_needs_a_reason_then_switches(console: Console) -> None:
    await mark_menus_synced(console)
    token = await console.sign_in("disaster")
    html = await console.get_html("/console/mode")
    assert "平常モード" in html and 'href="/console/mode/switch"' in html
    html = await console.get_html("/console/mode/switch")
    assert "災害モードに切り替えます" in html and '<textarea id="reason"' in html
    _, _, html = await console.post_form(
        "/console/mode/switch",
        {"csrf_token": token, "mode": "disaster", "reason": "   "},
        status=422,
    )
    assert 'aria-invalid="true"' in html
    assert await mode_in_force(console) == "normal"
    _, location, _ = await console.post_form(
        "/console/mode/switch",
        {"csrf_token": token, "mode": "disaster", "reason": "大雨特別警報（中原区）"},
    )
    assert location == "/console/mode?msg=mode_switched"
    assert await mode_in_force(console) == "disaster"
    html = await console.get_html("/console/mode")
    assert "災害モード" in html and "大雨特別警報（中原区）" in html
    assert 'data-watch-url="/api/mode"' in html  # the switch job has not run: the page watches
    async with console.db.sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "mode.switch" in actions


async def test_pr_staff_cannot_switch(console: Console) -> None:
    await mark_menus_synced(console)
    token = await console.sign_in("pr")
    html = await console.get_html("/console/mode", status=403)
    assert "権限がありません" in html
    await console.post_form(
        "/console/mode/switch",
        {"csrf_token": token, "mode": "disaster", "reason": "いたずら"},
        status=403,
    )
    assert await mode_in_force(console) == "normal"


async def test_unsynced_menus_are_refused_with_a_way_out(console: Console) -> None:
    token = await console.sign_in("disaster")
    html = await console.get_html("/console/mode")
    assert 'action="/console/mode/sync"' in html
    _, _, html = await console.post_form(
        "/console/mode/switch",
        {"csrf_token": token, "mode": "disaster", "reason": "訓練"},
        status=409,
    )
    assert "同期されていません" in html
    assert await mode_in_force(console) == "normal"


async def test_emergency_message_from_a_template_goes_out_at_once(console: Console) -> None:
    token = await console.sign_in("disaster")
    html = await console.get_html("/console/mode")
    assert "避難指示（警戒レベル4）" in html
    _, location, _ = await console.post_form(
        "/console/mode/emergency",
        {"csrf_token": token, "template": "evacuation_order", "wards": ["141330"]},
    )
    match = re.fullmatch(r"/console/broadcasts/(\d+)\?msg=scheduled", location)
    assert match
    async with console.db.sessionmaker() as session:
        broadcast = await session.get(Broadcast, int(match.group(1)))
    assert broadcast is not None
    assert (broadcast.priority, broadcast.status) == ("emergency", "scheduled")
    assert "中原区" in broadcast.content["ja"]["title"]


async def test_proposal_can_be_dismissed_with_a_note(console: Console) -> None:
    async with console.db.transaction() as session:
        proposal = ModeProposal(
            kind="switch",
            status="pending",
            source="jma",
            event_key="test-event",
            reason_ja="大雨特別警報（川崎市）",
            reason_en="Heavy rain emergency warning",
            ward_codes=["141330"],
            template_params={},
            rule_keys=[],
        )
        session.add(proposal)
        await session.flush()
        proposal_id = proposal.id
    token = await console.sign_in("disaster")
    html = await console.get_html("/console/mode")
    assert "大雨特別警報（川崎市）" in html
    await console.post_form(
        f"/console/mode/proposals/{proposal_id}/dismiss",
        {"csrf_token": token, "note": ""},
        status=422,
    )
    await console.post_form(
        f"/console/mode/proposals/{proposal_id}/dismiss",
        {"csrf_token": token, "note": "対象地域外の誤報"},
    )
    async with console.db.sessionmaker() as session:
        row = await session.get(ModeProposal, proposal_id)
    assert row is not None and row.status == "dismissed"
