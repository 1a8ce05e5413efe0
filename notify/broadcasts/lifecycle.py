"""The broadcast state machine and who may move it.

    draft ─submit→ submitted ─approve→ approved ─schedule→ scheduled ─(job)→ sending → completed
      ↑               │reject (comment)                      │reschedule                  ↘ failed
      └───────────────┘          withdraw (submitted/approved/scheduled → draft)
    cancel: draft / submitted / approved / scheduled → cancelled

Every change bumps `Broadcast.version`, so a scheduled job (whose id and argument carry the
version) can tell it is stale, and a client holding an old version gets 409. Approval must come
from a different staff user than the author and the submitter.

Roles: PR staff compose, submit, schedule, cancel and test-send; approvers approve and reject;
disaster staff do all of that for emergency broadcasts only (they create emergencies, and a
second disaster staff member may approve one); analysts read; admin passes every check.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from notify.errors import Conflict, Forbidden
from notify.models import Broadcast, Role
from notify.web.auth import Principal


class Status(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"  # by the delivery engine (pause / resume while sending)
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


S = Status
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "edit": (frozenset({S.DRAFT}), S.DRAFT),
    "submit": (frozenset({S.DRAFT}), S.SUBMITTED),
    "approve": (frozenset({S.SUBMITTED}), S.APPROVED),
    "reject": (frozenset({S.SUBMITTED}), S.DRAFT),
    "withdraw": (frozenset({S.SUBMITTED, S.APPROVED, S.SCHEDULED}), S.DRAFT),
    "schedule": (frozenset({S.APPROVED, S.SCHEDULED}), S.SCHEDULED),
    "cancel": (frozenset({S.DRAFT, S.SUBMITTED, S.APPROVED, S.SCHEDULED}), S.CANCELLED),
    "start": (frozenset({S.SCHEDULED}), S.SENDING),
}
TEST_SEND_FROM = frozenset({S.DRAFT, S.SUBMITTED, S.APPROVED, S.SCHEDULED})

COMPOSERS = (Role.PR, Role.DISASTER)
REVIEWERS = (Role.APPROVER, Role.DISASTER)
READERS = (Role.PR, Role.APPROVER, Role.DISASTER, Role.ANALYST)


def check_transition(broadcast: Broadcast, action: str, version: int | None) -> Status:
    """The status `action` leads to; Conflict naming `status` or `version` otherwise."""
    allowed, target = TRANSITIONS[action]
    if version is not None and version != broadcast.version:
        raise Conflict(
            "他の操作で更新されています。再読み込みしてください / the broadcast changed meanwhile",
            fields={"version": f"stale: the current version is {broadcast.version}"},
        )
    if broadcast.status not in allowed:
        wanted = ", ".join(sorted(allowed))
        raise Conflict(
            f"この状態では実行できません / cannot {action} a broadcast that is {broadcast.status}",
            fields={"status": f"is {broadcast.status}; {action} needs one of: {wanted}"},
        )
    return target


def bump(broadcast: Broadcast, status: Status) -> None:
    broadcast.status = status
    broadcast.version += 1


def _has(principal: Principal, roles: Iterable[str]) -> bool:
    return Role.ADMIN in principal.roles or bool(set(roles) & principal.roles)


def check_may_compose(principal: Principal, priority: str) -> None:
    """PR staff write normal broadcasts; disaster staff write emergency ones."""
    if priority == "emergency" and not _has(principal, [Role.DISASTER]):
        raise Forbidden(
            "緊急配信は防災担当のみ作成できます / only disaster staff create emergency broadcasts",
            fields={"priority": "emergency needs the disaster role"},
        )
    if priority == "normal" and not _has(principal, [Role.PR]):
        raise Forbidden(
            "通常配信は広報担当が作成します / normal broadcasts are composed by PR staff",
            fields={"priority": "normal needs the pr role"},
        )


def check_may_operate(principal: Principal, broadcast: Broadcast) -> None:
    """Submit, schedule, cancel, withdraw, test-send: PR staff, or disaster staff on
    emergencies."""
    if _has(principal, [Role.PR]):
        return
    if broadcast.priority == "emergency" and _has(principal, [Role.DISASTER]):
        return
    raise Forbidden(
        "この配信を操作する権限がありません / not allowed to operate this broadcast",
        fields={"role": "needs pr (or disaster for emergency broadcasts)"},
    )


def check_may_review(principal: Principal, broadcast: Broadcast) -> None:
    """Approvers review everything; disaster staff review emergencies; never one's own."""
    allowed = _has(principal, [Role.APPROVER]) or (
        broadcast.priority == "emergency" and _has(principal, [Role.DISASTER])
    )
    if not allowed:
        raise Forbidden(
            "承認の権限がありません / not allowed to review this broadcast",
            fields={"role": "needs approver (or disaster for emergency broadcasts)"},
        )
    own = {broadcast.created_by, broadcast.submitted_by}
    if principal.staff_id in own:
        raise Forbidden(
            "自分が作成・申請した配信は承認できません / approval must come from another staff user",
            fields={"approved_by": "must differ from the author and the submitter"},
        )
