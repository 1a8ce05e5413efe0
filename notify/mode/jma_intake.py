"""JMA telegrams in: parse safely, decide (notify.jma.evaluate), act, and remember.

Input: one telegram's XML, or an Atom feed (JMA's PuSH/polled feed) whose entries link to
telegrams; the hub fetches only links under `settings.jma_fetch_prefix`, and checks every
link before fetching any. The same bytes act once (sha256): a relay that posts twice does
not propose or switch twice.

What each decision does (what the hub did is the record's `outcome`):

    switch        switch to disaster (settings.jma_auto_switch on; evaluate proposes otherwise)
                  + the prepared emergency message to the affected wards
    propose       a pending proposal for disaster staff (one per JMA event)
    withdraw      取消/訂正: pending proposals of that event are withdrawn; if that event switched
                  the city automatically and nobody switched since, the city switches back and
                  its emergency broadcast is cancelled if not yet sent
    propose_return_to_normal   解除: a pending return-to-normal proposal (in disaster mode)
    ignore        recorded only
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from notify import audit
from notify.errors import HubError
from notify.jma import Decision, DecisionAction, Telegram, evaluate, parse_telegram
from notify.jma.telegram import AreaScope
from notify.mode.emergency import JMA_ACTOR, send_emergency, ward_area
from notify.mode.proposals import cancel_broadcast, new_proposal
from notify.mode.runtime import ModeRuntime, jma_rules
from notify.mode.state import current_state
from notify.mode.switch import request_switch
from notify.mode.tables import JmaTelegramRecord, ModeProposal

log = logging.getLogger(__name__)
JMA = ("system", "jma")


@dataclass
class IntakeResult:
    telegram_id: int
    duplicate: bool
    data_type: str
    event_key: str
    action: str
    outcome: str
    reason_ja: str
    reason_en: str
    ward_codes: list[str] = field(default_factory=list)
    proposal_id: int | None = None
    switch_id: int | None = None
    broadcast_id: int | None = None


def _result(row: JmaTelegramRecord, duplicate: bool) -> IntakeResult:
    return IntakeResult(
        row.id,
        duplicate,
        row.data_type,
        row.event_key,
        row.action,
        row.outcome,
        row.reason_ja,
        row.reason_en,
        list(row.ward_codes),
        row.proposal_id,
        row.switch_id,
        row.broadcast_id,
    )


async def ingest_telegram(rt: ModeRuntime, raw: bytes, *, source: str) -> IntakeResult:
    """Parse (InvalidInput / PayloadTooLarge refuse it, changing nothing), decide, act."""
    digest = hashlib.sha256(raw).hexdigest()
    async with rt.db.sessionmaker() as session:
        seen = (
            await session.execute(
                select(JmaTelegramRecord).where(JmaTelegramRecord.sha256 == digest)
            )
        ).scalar_one_or_none()
    if seen is not None:
        return _result(seen, True)
    telegram = parse_telegram(raw)
    areas, rules = jma_rules(rt.settings, rt.city)
    decision = evaluate(telegram, areas, rules, auto_switch_allowed=rt.settings.jma_auto_switch)
    try:  # claim the bytes first: a concurrent duplicate stops here
        async with rt.db.transaction() as session:
            row = JmaTelegramRecord(
                sha256=digest,
                source=source,
                data_type=telegram.data_type[:16],
                kind=telegram.kind.value,
                status=telegram.status.value,
                info_type=telegram.info_type.value,
                event_key=decision.event_key[:200],
                event_id=(telegram.event_id or None) and telegram.event_id[:64],
                report_at=telegram.report_datetime,
                action=decision.action.value,
                outcome="pending",
                reason_ja=decision.reason_ja,
                reason_en=decision.reason_en,
                ward_codes=list(decision.ward_codes),
            )
            session.add(row)
    except IntegrityError:
        async with rt.db.sessionmaker() as session:
            seen = (
                await session.execute(
                    select(JmaTelegramRecord).where(JmaTelegramRecord.sha256 == digest)
                )
            ).scalar_one()
        return _result(seen, True)
    try:
        effects = await _act(rt, telegram, decision)
    except HubError:  # e.g. menus not synced: nothing was done, so let a resend act
        async with rt.db.transaction() as session:
            await session.execute(delete(JmaTelegramRecord).where(JmaTelegramRecord.id == row.id))
        raise
    async with rt.db.transaction() as session:
        stored = await session.get(JmaTelegramRecord, row.id)
        assert stored is not None
        for name, value in effects.items():
            setattr(stored, name, value)
        audit.record(
            session,
            JMA,
            "jma.telegram",
            target_type="jma_telegram",
            target_id=row.id,
            data_type=telegram.data_type,
            event_key=decision.event_key,
            decision=decision.action.value,
            outcome=effects["outcome"],
        )
        row = stored
    return _result(row, False)


def template_params(rt: ModeRuntime, telegram: Telegram, decision: Decision) -> dict[str, str]:
    params = {"area": ward_area(rt, decision.ward_codes)}
    areas, rules = jma_rules(rt.settings, rt.city)
    names = [r.ja for r in rules if r.key in decision.rule_keys]
    if names:
        params["reason"] = "、".join(names)
    best = None
    for area in telegram.seismic_areas:
        wards = (
            areas.area_wards(area.code)
            if area.scope is AreaScope.CITY
            else areas.region_wards(area.code)
        )
        if wards and area.max_intensity is not None:
            if best is None or area.max_intensity.at_least(best):
                best = area.max_intensity
    if best is not None:
        params["intensity"] = best.label_ja.removeprefix("震度")
    return params


async def _act(rt: ModeRuntime, telegram: Telegram, decision: Decision) -> dict[str, Any]:
    state = await current_state(rt.db)
    mode = state.mode if state is not None else "normal"
    action = decision.action
    if action is DecisionAction.IGNORE:
        return {"outcome": "ignored"}
    if action is DecisionAction.WITHDRAW:
        return await _withdraw(rt, decision)
    if action is DecisionAction.PROPOSE_RETURN_TO_NORMAL:
        await _settle_proposals(rt, decision.event_key, "switch", "superseded")
        if mode != "disaster":
            return {"outcome": "already_normal"}
        proposal = await new_proposal(rt, "return_to_normal", decision, {})
        return {"outcome": "proposed_return", "proposal_id": proposal.id}
    if mode == "disaster":
        return {"outcome": "already_disaster"}
    params = template_params(rt, telegram, decision)
    if action is DecisionAction.PROPOSE:
        proposal = await new_proposal(rt, "switch", decision, params)
        return {"outcome": "proposed", "proposal_id": proposal.id}
    reason = f"{decision.reason_ja}\n{decision.reason_en}"
    asked = await request_switch(
        rt, "disaster", reason, JMA, source="jma", audit_detail={"event_key": decision.event_key}
    )
    await _settle_proposals(rt, decision.event_key, "switch", "superseded")
    effects: dict[str, Any] = {
        "outcome": "switched",
        "switch_id": asked.switch.id if asked.switch else None,
    }
    if decision.template_key:
        try:
            broadcast = await send_emergency(
                rt,
                JMA_ACTOR,
                template=decision.template_key,
                params=params,
                wards=decision.ward_codes,
                context={"event_key": decision.event_key},
            )
            effects["broadcast_id"] = broadcast.id
        except HubError as exc:  # the switch stands; staff send the message by hand
            log.error("JMA emergency message %s not sent: %s", decision.template_key, exc.message)
            effects["outcome"] = "switched_without_message"
    return effects


async def _settle_proposals(rt: ModeRuntime, event_key: str, kind: str, status: str) -> int:
    async with rt.db.transaction() as session:
        result = await session.execute(
            update(ModeProposal)
            .where(
                ModeProposal.status == "pending",
                ModeProposal.event_key == event_key,
                ModeProposal.kind == kind,
            )
            .values(status=status)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _withdraw(rt: ModeRuntime, decision: Decision) -> dict[str, Any]:
    key = decision.cancels_event_key or decision.event_key
    withdrawn = await _settle_proposals(rt, key, "switch", "withdrawn")
    withdrawn += await _settle_proposals(rt, key, "return_to_normal", "withdrawn")
    async with rt.db.sessionmaker() as session:
        started = (
            await session.execute(
                select(JmaTelegramRecord)
                .where(
                    JmaTelegramRecord.event_key == key,
                    JmaTelegramRecord.switch_id.is_not(None),
                )
                .order_by(JmaTelegramRecord.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    state = await current_state(rt.db)
    if started is None or state is None or state.switch_id != started.switch_id:
        return {"outcome": "withdrew_proposals" if withdrawn else "nothing_to_withdraw"}
    reason = f"{decision.reason_ja}\n{decision.reason_en}"
    asked = await request_switch(
        rt, "normal", reason, JMA, source="jma", audit_detail={"withdraws_event": key}
    )
    if started.broadcast_id is not None:
        await cancel_broadcast(rt, started.broadcast_id, JMA_ACTOR)
    return {
        "outcome": "switched_back",
        "switch_id": asked.switch.id if asked.switch else None,
        "broadcast_id": started.broadcast_id,
    }
