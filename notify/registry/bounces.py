"""Email bounce intake: a DSN or complaint arrives after the SMTP server accepted the mail.

Two ways in, one function behind them (`ingest_bounce`):
- `POST /api/email/bounces` with the raw RFC 822 message (a mail provider's webhook, or an MTA
  pipe that posts), with an admin API token;
- `python -m notify bounce [FILE]` (stdin without FILE) for a Postfix `pipe` transport on the
  envelope sender's mailbox. Exit codes follow sysexits: 65 refuses the message for good, 75
  asks Postfix to try again later (database unreachable).

Everything in a bounce is attacker-controllable, so `X-Endpoint-Id` names the endpoint only
when that endpoint's address is the bounce's recipient; otherwise the recipient address is
looked up among email endpoints. A hard bounce or a complaint prunes the endpoint exactly as
the delivery engine prunes a permanent failure (`notify.delivery.record.prune_endpoints`);
a soft one never prunes. When the message came from a broadcast that really sent to that
endpoint, a bounce (hard: permanent, soft: not) is stored for the statistics (email
"delivered" = accepted − bounces); a complaint is not, since it proves the mail arrived.
Repeating a message changes nothing more: pruning only touches active endpoints, a bounce is
stored once per (broadcast, endpoint), and only a change is audit-logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelName
from channels.email_bounces import MAX_BOUNCE_BYTES, Bounce, BounceKind, parse_bounce
from notify import audit
from notify.db import Database, utcnow
from notify.delivery.record import prune_endpoints
from notify.errors import HubError, InvalidInput, PayloadTooLarge
from notify.models import Endpoint, Role
from notify.registry.routing import routes
from notify.settings import Settings
from notify.stats.events import record_bounce, was_targeted
from notify.web.api import Call, UnsupportedMediaType
from notify.web.auth import Principal
from notify.web.keys import DB

log = logging.getLogger(__name__)

BOUNCE_TYPES = ("message/rfc822", "application/octet-stream")
EX_DATAERR, EX_TEMPFAIL = 65, 75  # sysexits.h: Postfix bounces on the first, retries the second
Action = Literal["pruned", "recorded", "unchanged", "unmatched"]


@dataclasses.dataclass(frozen=True, slots=True)
class BounceOutcome:
    kind: BounceKind
    recipient: str | None
    status: str | None
    endpoint_id: int | None  # the endpoint the bounce was matched to
    matched_by: Literal["endpoint_header", "address"] | None
    broadcast_id: int | None  # set when that broadcast really sent to the endpoint
    pruned: bool  # this call pruned the endpoint
    recorded: bool  # this call stored (or made permanent) the broadcast's bounce

    @property
    def action(self) -> Action:
        if self.endpoint_id is None:
            return "unmatched"
        return "pruned" if self.pruned else "recorded" if self.recorded else "unchanged"

    def describe(self) -> str:
        who = f"endpoint {self.endpoint_id}" if self.endpoint_id else "no known endpoint"
        where = f", broadcast {self.broadcast_id}" if self.broadcast_id else ""
        what = "complaint" if self.kind == "complaint" else f"{self.kind} bounce"
        return f"{what} ({self.status or 'no status'}) for {who}{where}: {self.action}"


async def ingest_bounce(
    db: Database,
    raw: bytes,
    *,
    actor: Principal | tuple[str, str | None] = ("system", "bounce-intake"),
    now: dt.datetime | None = None,
) -> BounceOutcome:
    """Read one bounce / complaint message and act on it; refuses (writing nothing) a message
    that is too large or is not a bounce."""
    bounce = read_bounce(raw)
    now = now or utcnow()
    async with db.transaction() as session:
        endpoint, matched_by = await _find_endpoint(session, bounce)
        pruned = recorded = False
        broadcast_id = None
        if endpoint is not None:
            if bounce.prune:
                code = "COMPLAINT" if bounce.kind == "complaint" else "HARD_BOUNCE"
                code = f"{code} {bounce.status}" if bounce.status else code
                changed = await prune_endpoints(
                    session, ChannelName.EMAIL, [endpoint.id], code=code, now=now
                )
                pruned = changed > 0
            if bounce.broadcast_id is not None and await was_targeted(
                session, bounce.broadcast_id, endpoint.id, ChannelName.EMAIL
            ):
                broadcast_id = bounce.broadcast_id
                if bounce.kind != "complaint":  # a complaint proves delivery: not a bounce
                    recorded = await record_bounce(
                        session, broadcast_id, endpoint.id, permanent=bounce.prune
                    )
            if pruned or recorded:
                audit.record(
                    session,
                    actor,
                    "email.bounce",
                    target_type="endpoint",
                    target_id=endpoint.id,
                    kind=bounce.kind,
                    status=bounce.status,
                    broadcast_id=broadcast_id,
                    pruned=pruned,
                    matched_by=matched_by,
                )
    outcome = BounceOutcome(
        bounce.kind,
        bounce.recipient,
        bounce.status,
        endpoint.id if endpoint is not None else None,
        matched_by,
        broadcast_id,
        pruned,
        recorded,
    )
    log.info("%s", outcome.describe())
    return outcome


def read_bounce(raw: bytes) -> Bounce:
    if len(raw) > MAX_BOUNCE_BYTES:
        raise _too_large()
    try:
        bounce = parse_bounce(raw)
    except Exception as exc:  # hostile input: whatever the parser trips on is a refusal
        log.warning("unreadable bounce message", exc_info=True)
        raise _not_a_bounce() from exc
    if bounce is None:
        raise _not_a_bounce()
    return bounce


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"メールが大きすぎます / the message is larger than {MAX_BOUNCE_BYTES} bytes"
    )


def _not_a_bounce() -> InvalidInput:
    return InvalidInput(
        "不達通知・苦情報告として読めません / not a bounce (DSN) or complaint (ARF) message",
        fields={"body": "expected a delivery-status or feedback report"},
    )


async def _find_endpoint(
    session: AsyncSession, bounce: Bounce
) -> tuple[Endpoint | None, Literal["endpoint_header", "address"] | None]:
    recipient = bounce.recipient
    if recipient is None:
        return None, None
    if bounce.endpoint_id is not None:
        named = await session.get(Endpoint, bounce.endpoint_id)
        if (
            named is not None
            and named.channel == ChannelName.EMAIL
            and named.address.lower() == recipient
        ):
            return named, "endpoint_header"
    email = select(Endpoint).where(Endpoint.channel == ChannelName.EMAIL)
    exact = (await session.execute(email.where(Endpoint.address == recipient))).scalar()
    if exact is not None:
        return exact, "address"
    # Stored addresses keep the local part's case; the parser lowercases. Only one match counts.
    found = (
        (await session.execute(email.where(func.lower(Endpoint.address) == recipient).limit(2)))
        .scalars()
        .all()
    )
    return (found[0], "address") if len(found) == 1 else (None, None)


# --- HTTP ------------------------------------------------------------------------------------


class BounceOut(BaseModel):
    action: Action
    kind: BounceKind
    recipient: str | None
    status: str | None
    endpoint_id: int | None
    matched_by: Literal["endpoint_header", "address"] | None
    broadcast_id: int | None
    pruned: bool
    recorded: bool


@routes.post(
    "/api/email/bounces",
    summary="Email bounce / complaint in (raw RFC 822 message) / 不達通知の受信",
    roles=[Role.ADMIN],
    raw_body="message/rfc822",
    response=BounceOut,
    errors=[413, 415],
)
async def post_bounce(request: web.Request, call: Call[None, None]) -> BounceOut:
    assert call.principal is not None
    if request.content_type not in BOUNCE_TYPES:
        raise UnsupportedMediaType(
            "Content-Type は message/rfc822 か application/octet-stream にしてください"
            " / expected message/rfc822 or application/octet-stream"
        )
    raw = await _read_capped(request)
    outcome = await ingest_bounce(request.app[DB], raw, actor=call.principal)
    return BounceOut(action=outcome.action, **dataclasses.asdict(outcome))


async def _read_capped(request: web.Request) -> bytes:
    """The body, read past the app's general size limit up to MAX_BOUNCE_BYTES only."""
    if (request.content_length or 0) > MAX_BOUNCE_BYTES:
        raise _too_large()
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_BOUNCE_BYTES:
            raise _too_large()
    return bytes(data)


# --- command line ----------------------------------------------------------------------------


def run_cli(settings: Settings, path: Path | None) -> int:
    """`python -m notify bounce [FILE]`: one line out, a sysexits code back."""
    try:
        if path is None:
            raw = sys.stdin.buffer.read(MAX_BOUNCE_BYTES + 1)
        else:
            with path.open("rb") as file:
                raw = file.read(MAX_BOUNCE_BYTES + 1)
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EX_DATAERR
    try:
        outcome = asyncio.run(_ingest_once(settings, raw))
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EX_DATAERR
    except Exception as exc:  # database down and the like: Postfix keeps the mail and retries
        print(f"error: bounce not stored, try again later: {exc!r}"[:300], file=sys.stderr)
        return EX_TEMPFAIL
    print(outcome.describe())
    return 0


async def _ingest_once(settings: Settings, raw: bytes) -> BounceOutcome:
    db = Database.from_settings(settings)
    try:
        return await ingest_bounce(db, raw, actor=("system", "bounce-cli"))
    finally:
        await db.close()
