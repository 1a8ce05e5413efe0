"""Which actions the page offers: asked of the core's own checks, never re-implemented."""

from __future__ import annotations

from notify.broadcasts.lifecycle import (
    TEST_SEND_FROM,
    check_may_operate,
    check_may_review,
    check_transition,
)
from notify.errors import HubError
from notify.models import Broadcast
from notify.web.auth import Principal

OPERATE = ("edit", "submit", "withdraw", "schedule", "cancel")
REVIEW = ("approve", "reject")


def _passes(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except HubError:
        return False
    return True


def allowed_actions(principal: Principal, broadcast: Broadcast) -> set[str]:
    actions: set[str] = set()
    if _passes(check_may_operate, principal, broadcast):
        actions.update(a for a in OPERATE if _passes(check_transition, broadcast, a, None))
        if broadcast.status in TEST_SEND_FROM:
            actions.add("test")
        if broadcast.status == "sending":
            actions.update({"pause", "stop"})
        if broadcast.status == "paused":
            actions.update({"resume", "stop"})
    if _passes(check_may_review, principal, broadcast):
        actions.update(a for a in REVIEW if _passes(check_transition, broadcast, a, None))
    return actions


def review_refusal(principal: Principal, broadcast: Broadcast) -> str | None:
    """Why this viewer may not review (e.g. their own broadcast), for the page to say so."""
    try:
        check_may_review(principal, broadcast)
    except HubError as exc:
        return exc.message
    return None
