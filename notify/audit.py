"""The audit log: every state change, with who and when, in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import AuditEntry
from notify.web.auth import Principal

SYSTEM = ("system", None)


def record(
    session: AsyncSession,
    actor: Principal | tuple[str, str | None],
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    **detail: Any,
) -> AuditEntry:
    """Add an audit entry to the caller's transaction (committed or rolled back with it)."""
    actor_type, actor_id = actor.audit_actor if isinstance(actor, Principal) else actor
    entry = AuditEntry(
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        detail=detail,
    )
    session.add(entry)
    return entry
