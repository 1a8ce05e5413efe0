"""Transitions after drafting: submit, approve, reject, schedule, withdraw, cancel.

Each function runs inside the caller's transaction on a row loaded `FOR UPDATE` (PostgreSQL;
SQLite serialises writers), checks the move, changes the row, bumps the version and writes the
audit entry. Checks that call out (rendering, LINE validation) run before the transaction, in
`precheck`, so no row lock is held across a network call; `transition` runs one of the moves
in its own transaction. The JSON API and the console both go through these two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.broadcasts import service
from notify.broadcasts.lifecycle import (
    bump,
    check_may_operate,
    check_may_review,
    check_transition,
)
from notify.broadcasts.scheduling import MAX_AHEAD, PAST_GRACE
from notify.city import CityConfig
from notify.db import Database, utcnow
from notify.errors import InvalidInput
from notify.models import Broadcast
from notify.settings import Settings
from notify.web.auth import Principal

Change = Callable[[AsyncSession, Broadcast], object]


async def precheck(
    db: Database,
    broadcast_id: int,
    actor: Principal,
    action: str,
    version: int,
    *,
    city: CityConfig,
    settings: Settings,
) -> None:
    """Before submit and approve: the cheap refusals first (role, state, version), then the
    rendering checks and LINE's validation, outside any transaction."""
    async with db.sessionmaker() as session:
        broadcast = await service.load(session, broadcast_id)
    if action == "approve":
        check_may_review(actor, broadcast)
    else:
        check_may_operate(actor, broadcast)
    check_transition(broadcast, action, version)
    await service.approval_checks(broadcast, city, settings)


async def transition(db: Database, broadcast_id: int, change: Change) -> Broadcast:
    """Apply `change` (one of the moves below) to the row loaded `FOR UPDATE`, in one
    transaction; returns the changed broadcast."""
    async with db.transaction() as session:
        broadcast = await service.load(session, broadcast_id, for_update=True)
        change(session, broadcast)
    return broadcast


def _record(
    session: AsyncSession, actor: Principal, action: str, b: Broadcast, **detail: object
) -> None:
    audit.record(
        session,
        actor,
        f"broadcast.{action}",
        target_type="broadcast",
        target_id=b.id,
        version=b.version,
        status=b.status,
        **detail,
    )


def submit(session: AsyncSession, actor: Principal, b: Broadcast, version: int) -> None:
    check_may_operate(actor, b)
    target = check_transition(b, "submit", version)
    b.submitted_by, b.submitted_at, b.review_comment = actor.staff_id, utcnow(), None
    bump(b, target)
    _record(session, actor, "submit", b)


def approve(
    session: AsyncSession, actor: Principal, b: Broadcast, version: int, comment: str | None
) -> None:
    check_may_review(actor, b)
    target = check_transition(b, "approve", version)
    b.approved_by, b.approved_at, b.review_comment = actor.staff_id, utcnow(), comment
    bump(b, target)
    _record(session, actor, "approve", b, comment=comment)


def reject(
    session: AsyncSession, actor: Principal, b: Broadcast, version: int, comment: str
) -> None:
    check_may_review(actor, b)
    target = check_transition(b, "reject", version)
    b.review_comment = comment
    b.submitted_by = b.submitted_at = b.approved_by = b.approved_at = None
    bump(b, target)
    _record(session, actor, "reject", b, comment=comment)


def withdraw(session: AsyncSession, actor: Principal, b: Broadcast, version: int) -> None:
    """Back to draft for editing; the approval is void and a scheduled job goes stale."""
    check_may_operate(actor, b)
    target = check_transition(b, "withdraw", version)
    b.submitted_by = b.submitted_at = b.approved_by = b.approved_at = None
    bump(b, target)
    _record(session, actor, "withdraw", b)


def schedule(
    session: AsyncSession,
    actor: Principal,
    b: Broadcast,
    version: int,
    send_at: dt.datetime | None,
) -> dt.datetime:
    """Schedule (or reschedule) for `send_at`, or now; returns the time the job is due."""
    check_may_operate(actor, b)
    was = b.status
    target = check_transition(b, "schedule", version)
    now = utcnow()
    due = send_at or now
    if due < now - PAST_GRACE:
        raise InvalidInput(
            "配信日時が過去です / send_at is in the past",
            fields={"send_at": f"must not be before {now.isoformat(timespec='seconds')}"},
        )
    if due > now + MAX_AHEAD:
        raise InvalidInput(
            "配信日時が先すぎます / send_at too far ahead",
            fields={"send_at": "at most one year ahead"},
        )
    previous = b.send_at
    b.send_at = max(due, now).astimezone(dt.UTC)
    bump(b, target)
    action = "reschedule" if was == target else "schedule"
    _record(
        session,
        actor,
        action,
        b,
        send_at=b.send_at.isoformat(),
        previous=previous.isoformat() if previous and action == "reschedule" else None,
    )
    return b.send_at


def cancel(
    session: AsyncSession, actor: Principal, b: Broadcast, version: int | None, reason: str | None
) -> None:
    check_may_operate(actor, b)
    target = check_transition(b, "cancel", version)
    b.finished_at = utcnow()
    bump(b, target)
    _record(session, actor, "cancel", b, reason=reason)
