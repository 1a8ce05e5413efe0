"""arq jobs of the registry area (collected by worker.py).

- `send_email_confirmation(endpoint_id)`: the double opt-in mail. Idempotent enough for an
  at-least-once queue: it only sends while the endpoint is still pending, and a repeat is one
  more harmless confirmation mail. Transient SMTP failures retry 5 times (10 s, 20 s, … );
  a permanent refusal marks the endpoint pruned.
- `prune_webhook_events` (hourly): forgets LINE webhookEventIds older than 7 days (LINE
  redelivers for far less than that).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from arq import Retry, cron
from sqlalchemy import delete

from notify.db import Database, utcnow
from notify.errors import PermanentChannelError, TransientChannelError
from notify.models import Consent, Endpoint, EndpointStatus, WebhookEvent
from notify.registry.email_optin import confirm_token, confirm_url
from notify.registry.mailer import build_confirmation, send_mail

log = logging.getLogger(__name__)
MAX_TRIES = 6
WEBHOOK_EVENT_TTL = dt.timedelta(days=7)


async def send_email_confirmation(ctx: dict[str, Any], endpoint_id: int) -> str:
    db: Database = ctx["db"]
    settings = ctx["settings"]
    async with db.sessionmaker() as session:
        endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None or endpoint.channel != "email":
        return "gone"
    if endpoint.consent != Consent.PENDING:
        return "not pending"
    url = confirm_url(settings, confirm_token(settings, endpoint.id, endpoint.address))
    message = build_confirmation(
        settings,
        ctx["city"],
        endpoint.address,
        url,
        smtputf8=not endpoint.address.isascii(),
        now=utcnow(),
    )
    try:
        await send_mail(settings, message)
    except TransientChannelError as exc:
        tries = int(ctx.get("job_try", 1))
        if tries >= MAX_TRIES:
            log.warning("confirmation mail to endpoint %s gave up: %s", endpoint_id, exc)
            return "gave up"
        raise Retry(defer=10 * 2 ** (tries - 1)) from exc
    except PermanentChannelError as exc:
        async with db.transaction() as session:
            row = await session.get(Endpoint, endpoint_id)
            if row is not None:
                row.status = EndpointStatus.PRUNED
                row.last_error = str(exc)[:200]
        return "refused"
    return "sent"


async def prune_webhook_events(ctx: dict[str, Any]) -> int:
    db: Database = ctx["db"]
    async with db.transaction() as session:
        result = await session.execute(
            delete(WebhookEvent).where(WebhookEvent.received_at < utcnow() - WEBHOOK_EVENT_TTL)
        )
    return int(getattr(result, "rowcount", 0) or 0)


FUNCTIONS: list[Any] = [send_email_confirmation, prune_webhook_events]
CRON_JOBS: list[Any] = [cron(prune_webhook_events, minute={17}, run_at_startup=False)]
