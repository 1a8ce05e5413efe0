"""Emergency broadcasts from prepared messages to chosen wards, sent at once.

Created through the broadcasts area (`service.create_from_prepared`, which checks that only
disaster staff compose emergencies, and `service.approval_checks`, which renders every
language × channel × ward and asks LINE to validate), then scheduled for now.

Policy decision (documented here and in the audit entry): in disaster mode an emergency
broadcast goes straight from draft to `scheduled` — no second approver. Minutes matter
(避難指示), the content is a prepared message checked when it was written, and the sender is
disaster staff (or the JMA automation acting with that role). Everything is still
audit-logged (`broadcast.create`, `broadcast.from_prepared`, `broadcast.emergency_dispatch`).
Priority `emergency` makes the delivery engine ignore quiet hours and the topic opt-outs
the city marks `overridable` (config/<city>.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from notify import audit
from notify.broadcasts import service
from notify.broadcasts.lifecycle import Status, bump
from notify.broadcasts.scheduling import enqueue_start
from notify.compose.prepared import prepared_message
from notify.db import utcnow
from notify.errors import InvalidInput
from notify.mode.runtime import ModeRuntime
from notify.models import Broadcast, Role
from notify.web.auth import Principal
from segments.rules import EVERYONE, parse_rule

POLICY = "disaster staff dispatch emergency broadcasts without a second approval"


@dataclass(frozen=True, slots=True)
class Automation(Principal):
    """The JMA automation: acts with the disaster role, audit-logged as the system."""

    @property
    def audit_actor(self) -> tuple[str, str]:
        return "system", self.login or "automation"


JMA_ACTOR = Automation("system", login="jma", roles=frozenset({Role.DISASTER}))


def ward_area(rt: ModeRuntime, wards: Sequence[str]) -> str:
    """The `$area` text: the city's name when every ward is meant, else the ward names."""
    if not wards or set(wards) >= rt.city.ward_codes:
        return rt.city.city.name.ja
    names = [w.ja for w in rt.city.wards if w.code in set(wards)]
    return "、".join(names)


async def send_emergency(
    rt: ModeRuntime,
    actor: Principal,
    *,
    template: str,
    params: dict[str, str],
    wards: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    title: str | None = None,
    context: dict[str, object] | None = None,
) -> Broadcast:
    """Create and schedule (for now) an emergency broadcast; InvalidInput/Forbidden refuse it
    and change nothing."""
    message = prepared_message(template)
    if message.priority != "emergency":
        raise InvalidInput(
            f"定型文 {message.key} は緊急配信用ではありません / {message.key} is not an "
            "emergency message",
            fields={"template": "not an emergency message"},
        )
    unknown = sorted(set(wards or ()) - rt.city.ward_codes)
    if unknown:
        raise InvalidInput(
            "区コードが不正です / unknown ward", fields={"wards": f"unknown: {', '.join(unknown)}"}
        )
    wanted = {p.name for p in message.params}
    filled = {k: v for k, v in params.items() if k in wanted}
    if "area" in wanted and not filled.get("area"):
        filled["area"] = ward_area(rt, wards or ())
    segment = parse_rule({"type": "wards", "codes": list(wards)}, rt.city) if wards else EVERYONE
    now = utcnow()
    async with rt.db.transaction() as session:
        broadcast = await service.create_from_prepared(
            session,
            actor,
            message.key,
            filled,
            rt.city,
            segment=segment,
            channels=channels,
            title=title,
        )
        await service.approval_checks(broadcast, rt.city, rt.settings)
        broadcast.send_at = now
        broadcast.submitted_by = broadcast.approved_by = actor.staff_id
        broadcast.submitted_at = broadcast.approved_at = now
        bump(broadcast, Status.SCHEDULED)
        audit.record(
            session,
            actor,
            "broadcast.emergency_dispatch",
            target_type="broadcast",
            target_id=broadcast.id,
            template=message.key,
            wards=list(wards or ()),
            policy=POLICY,
            **(context or {}),
        )
    if rt.redis is not None:
        await enqueue_start(rt.redis, broadcast.id, broadcast.version, now)
    return broadcast
