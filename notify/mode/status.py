"""The status read model: mode in force, since, by whom, why, and relinking progress."""

from __future__ import annotations

from sqlalchemy import func, select

from notify.mode.batches import budget
from notify.mode.runtime import ModeRuntime
from notify.mode.schemas import (
    BatchOut,
    BudgetOut,
    ProposalOut,
    PublicModeOut,
    RelinkOut,
    StatusOut,
    SwitchOut,
)
from notify.mode.state import current_state
from notify.mode.tables import LineBatchRequest, ModeMenu, ModeProposal, ModeSwitch


async def switch_out(rt: ModeRuntime, switch: ModeSwitch) -> SwitchOut:
    plan = switch.relink or {}
    batches: list[BatchOut] = []
    if plan.get("resume_key"):
        async with rt.db.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(LineBatchRequest)
                    .where(LineBatchRequest.resume_key == plan["resume_key"])
                    .order_by(LineBatchRequest.id)
                )
            ).scalars()
            batches = [
                BatchOut(
                    request_id=r.request_id,
                    phase=r.phase,
                    sent_at=r.sent_at,
                    completed_at=r.completed_at,
                )
                for r in rows
            ]
    relink = RelinkOut(
        strategy=plan.get("strategy"),
        phase=plan.get("phase"),
        operations=len(plan.get("operations", [])),
        pairs=plan.get("pairs", []),
        fallback=plan.get("fallback"),
        users_total=plan.get("users_total"),
        users_checked=plan.get("users_checked"),
        users_moved=plan.get("users_moved"),
        batches=batches,
    )
    return SwitchOut(
        id=switch.id,
        target_mode=switch.target_mode,  # type: ignore[arg-type]
        from_mode=switch.from_mode,  # type: ignore[arg-type]
        status=switch.status,
        reason=switch.reason,
        by=switch.actor_label,
        source=switch.source,
        requested_at=switch.requested_at,
        default_set_at=switch.default_set_at,
        relink_done_at=switch.relink_done_at,
        finished_at=switch.finished_at,
        error=switch.error,
        steps=switch.steps,
        relink=relink,
    )


async def public_mode(rt: ModeRuntime) -> PublicModeOut:
    state = await current_state(rt.db)
    if state is None:
        return PublicModeOut(mode="normal", since=None)
    return PublicModeOut(mode=state.mode, since=state.since)  # type: ignore[arg-type]


async def mode_status(rt: ModeRuntime) -> StatusOut:
    state = await current_state(rt.db)
    window = await budget(rt)
    async with rt.db.sessionmaker() as session:
        switch = (
            await session.get(ModeSwitch, state.switch_id) if state and state.switch_id else None
        )
        pending = (
            await session.execute(
                select(func.count())
                .select_from(ModeProposal)
                .where(ModeProposal.status == "pending")
            )
        ).scalar_one()
        synced = set((await session.execute(select(ModeMenu.key))).scalars())
    wanted = {m.key for m in rt.catalog().menus}
    return StatusOut(
        mode=state.mode if state else "normal",  # type: ignore[arg-type]
        since=state.since if state else None,
        by=state.actor_label if state else None,
        reason=state.reason if state else None,
        switch=await switch_out(rt, switch) if switch is not None else None,
        batch_budget=BudgetOut(
            used_last_hour=window.used, left=window.left, next_free_at=window.next_free_at
        ),
        pending_proposals=int(pending),
        menus_synced=wanted <= synced,
    )


def proposal_out(p: ModeProposal) -> ProposalOut:
    return ProposalOut(
        id=p.id,
        kind=p.kind,
        status=p.status,
        event_key=p.event_key,
        reason_ja=p.reason_ja,
        reason_en=p.reason_en,
        ward_codes=list(p.ward_codes or []),
        template_key=p.template_key,
        template_params=dict(p.template_params or {}),
        rule_keys=list(p.rule_keys or []),
        created_at=p.created_at,
        decided_at=p.decided_at,
        decided_by=p.decided_by,
        note=p.note,
        switch_id=p.switch_id,
        broadcast_id=p.broadcast_id,
    )
