"""Proposals to disaster staff (from JMA telegrams): create, list, accept, dismiss.

Accepting claims the proposal first (one guarded UPDATE), so two staff clicking at once
switch and send once; if the switch is then refused (menus not synced) the claim is undone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from notify import audit
from notify.broadcasts.lifecycle import Status, bump, check_transition
from notify.db import utcnow
from notify.errors import Conflict, HubError, NotFound
from notify.jma import Decision
from notify.mode.emergency import send_emergency
from notify.mode.menus import Mode
from notify.mode.runtime import ModeRuntime
from notify.mode.switch import request_switch
from notify.mode.tables import ModeProposal
from notify.models import Broadcast
from notify.web.auth import Principal


async def new_proposal(
    rt: ModeRuntime, kind: str, decision: Decision, params: dict[str, str]
) -> ModeProposal:
    """One pending proposal per kind and JMA event: a follow-up telegram updates it."""
    async with rt.db.transaction() as session:
        proposal = (
            await session.execute(
                select(ModeProposal).where(
                    ModeProposal.status == "pending",
                    ModeProposal.kind == kind,
                    ModeProposal.event_key == decision.event_key[:200],
                )
            )
        ).scalar_one_or_none()
        if proposal is None:
            proposal = ModeProposal(
                kind=kind, status="pending", source="jma", event_key=decision.event_key[:200]
            )
            session.add(proposal)
        proposal.reason_ja, proposal.reason_en = decision.reason_ja, decision.reason_en
        proposal.ward_codes = list(
            dict.fromkeys([*(proposal.ward_codes or []), *decision.ward_codes])
        )
        proposal.template_key = decision.template_key
        proposal.template_params = params
        proposal.rule_keys = list(decision.rule_keys)
        await session.flush()
        audit.record(
            session,
            ("system", "jma"),
            "mode.proposal",
            target_type="mode_proposal",
            target_id=proposal.id,
            kind=kind,
            event_key=decision.event_key,
        )
    return proposal


async def list_proposals(
    rt: ModeRuntime, status: str | None, limit: int = 50
) -> list[ModeProposal]:
    query = select(ModeProposal).order_by(ModeProposal.id.desc()).limit(limit)
    if status:
        query = query.where(ModeProposal.status == status)
    async with rt.db.sessionmaker() as session:
        return list((await session.execute(query)).scalars())


async def _claim(
    rt: ModeRuntime, proposal_id: int, to: str, principal: Principal, note: str | None
) -> ModeProposal:
    async with rt.db.transaction() as session:
        changed = await session.execute(
            update(ModeProposal)
            .where(ModeProposal.id == proposal_id, ModeProposal.status == "pending")
            .values(status=to, decided_at=utcnow(), decided_by=principal.login, note=note)
        )
        proposal = await session.get(ModeProposal, proposal_id)
        if proposal is None:
            raise NotFound(f"提案 {proposal_id} はありません / no proposal {proposal_id}")
        if not changed.rowcount:  # type: ignore[attr-defined]
            raise Conflict(
                f"この提案は処理済みです（{proposal.status}）/ the proposal is {proposal.status}",
                fields={"status": proposal.status},
            )
        audit.record(
            session,
            principal,
            f"mode.proposal.{to}",
            target_type="mode_proposal",
            target_id=proposal_id,
            note=note,
        )
    return proposal


@dataclass
class Acceptance:
    proposal: ModeProposal
    switch_id: int | None
    broadcast_id: int | None


async def accept(
    rt: ModeRuntime,
    principal: Principal,
    proposal_id: int,
    *,
    reason: str | None,
    send_message: bool,
    params: dict[str, str],
    channels: Sequence[str] | None = None,
) -> Acceptance:
    proposal = await _claim(rt, proposal_id, "accepted", principal, reason)
    target: Mode = "disaster" if proposal.kind == "switch" else "normal"
    try:
        asked = await request_switch(
            rt,
            target,
            reason or f"{proposal.reason_ja}\n{proposal.reason_en}",
            principal,
            source="proposal",
            audit_detail={"proposal_id": proposal_id},
        )
    except HubError:
        async with rt.db.transaction() as session:  # undo the claim: nothing changed
            row = await session.get(ModeProposal, proposal_id)
            if row is not None:
                row.status, row.decided_at, row.decided_by, row.note = "pending", None, None, None
        raise
    broadcast_id = None
    if target == "disaster" and send_message and proposal.template_key:
        broadcast = await send_emergency(
            rt,
            principal,
            template=proposal.template_key,
            params={**proposal.template_params, **params},
            wards=proposal.ward_codes,
            channels=channels,
            context={"proposal_id": proposal_id},
        )
        broadcast_id = broadcast.id
    async with rt.db.transaction() as session:
        row = await session.get(ModeProposal, proposal_id)
        assert row is not None
        row.switch_id = asked.switch.id if asked.switch else None
        row.broadcast_id = broadcast_id
        proposal = row
    return Acceptance(proposal, proposal.switch_id, broadcast_id)


async def dismiss(
    rt: ModeRuntime, principal: Principal, proposal_id: int, note: str
) -> ModeProposal:
    return await _claim(rt, proposal_id, "dismissed", principal, note)


async def cancel_broadcast(rt: ModeRuntime, broadcast_id: int, actor: Principal) -> str:
    """Stop an emergency broadcast a withdrawn telegram started, as far as it has not gone."""
    async with rt.db.transaction() as session:
        broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
        if broadcast is None:
            return "missing"
        if broadcast.status == Status.SCHEDULED:
            check_transition(broadcast, "cancel", None)
            bump(broadcast, Status.CANCELLED)
            audit.record(
                session,
                actor,
                "broadcast.cancel",
                target_type="broadcast",
                target_id=broadcast_id,
                why="JMA telegram withdrawn",
            )
            return "cancelled"
        status = broadcast.status
    if status in ("sending", "paused") and rt.redis is not None:
        from notify.delivery.control import cancel

        try:
            await cancel(rt.db, rt.redis, broadcast_id, actor)
        except Conflict:
            return status
        return "cancelled"
    return status
