"""Writing one batch attempt's per-recipient results, in one transaction.

Every UPDATE is guarded by `status = 'queued'`, so recording twice (a re-run that raced a
slow first run) can never turn a final status back, and what the database says is what
crossed the wire as far as anyone could know.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    BindParameter,
    String,
    Table,
    TextClause,
    Update,
    bindparam,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from channels.base import ChannelName, DeliveryResult, Outcome
from notify.db import UTCDateTime
from notify.delivery.retry import is_final
from notify.delivery.sql import execute_core, id_in, ids_param, status_is
from notify.delivery.tables import Delivery, DeliveryStatus
from notify.models import Endpoint, EndpointStatus

_deliveries = cast(Table, Delivery.__table__)


class BatchRow(NamedTuple):
    """One recipient of a batch, as loaded for sending (a tuple: a batch loads 500 of them,
    and a frozen dataclass costs a few microseconds more each)."""

    delivery_id: int
    resident_id: int
    endpoint_id: int
    address: str
    endpoint_token: str | None
    language: str
    ward_code: str | None
    attempts: int
    fallback_rank: int


@dataclass(slots=True)
class Recorded:
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    retry_after_s: float | None = None
    rate_limited: bool = False
    # Rows that failed for good: the "preferred" policy tries the resident's next channel.
    failed_rows: list[BatchRow] = field(default_factory=list)


async def record_results(
    session: AsyncSession,
    channel: str,
    rows: Sequence[BatchRow],
    results: Sequence[DeliveryResult],
    *,
    now: dt.datetime,
    max_attempts: int,
) -> Recorded:
    if len(results) != len(rows):  # an adapter bug must not mark the wrong people sent
        raise RuntimeError(f"{channel}: {len(results)} results for {len(rows)} recipients")
    out = Recorded()
    sent: list[tuple[int, str | None]] = []
    failed: dict[str, list[int]] = defaultdict(list)
    retry: dict[str, list[int]] = defaultdict(list)
    prune: dict[str, list[int]] = defaultdict(list)
    for row, result in zip(rows, results, strict=True):
        if result.outcome is Outcome.SENT:
            sent.append((row.delivery_id, result.provider_id))
            continue
        code = (result.error_code or result.outcome.value)[:64]
        if result.outcome is Outcome.PERMANENT:
            failed[code].append(row.delivery_id)
            out.failed_rows.append(row)
            if result.prune:
                prune[code].append(row.endpoint_id)
            continue
        if result.retry_after_s:
            out.retry_after_s = max(out.retry_after_s or 0.0, result.retry_after_s)
        if code in ("QUOTA_EXCEEDED", "rate_limited", "http_429", "channel_rate_limited"):
            out.rate_limited = True
        if is_final(row.attempts + 1, max_attempts):
            failed[code].append(row.delivery_id)
            out.failed_rows.append(row)
        else:
            retry[code].append(row.delivery_id)
    out.sent = await _mark_sent(session, sent, now)
    for code, ids in failed.items():
        out.failed += await _mark(session, ids, now, status=DeliveryStatus.FAILED, code=code)
    for code, ids in retry.items():
        out.retrying += await _mark(session, ids, now, status=DeliveryStatus.QUEUED, code=code)
    for code, endpoint_ids in prune.items():
        await prune_endpoints(session, channel, endpoint_ids, code=code, now=now)
    return out


async def prune_endpoints(
    session: AsyncSession,
    channel: str,
    endpoint_ids: Sequence[int],
    *,
    code: str,
    now: dt.datetime,
) -> int:
    """Stop sending to endpoints the provider called dead (LINE: blocked; others: pruned).

    Only active endpoints change, so a repeat changes nothing; returns how many changed.
    Also used by the email bounce intake (`notify.registry.bounces`).
    """
    dead = EndpointStatus.BLOCKED if channel == ChannelName.LINE else EndpointStatus.PRUNED
    result = await session.execute(
        update(Endpoint)
        .where(Endpoint.id.in_(endpoint_ids), Endpoint.status == EndpointStatus.ACTIVE)
        .values(status=dead, last_error=code[:200], updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _update_queued(
    session: AsyncSession, ids: Sequence[int], values: Mapping[str, Any]
) -> int:
    """UPDATE the rows `ids` still 'queued'; returns how many changed."""
    statement = (
        _deliveries.update()
        .where(
            id_in(session, _deliveries.c.id, ids),
            status_is(_deliveries.c.status, DeliveryStatus.QUEUED),
        )
        .values(**values)
    )
    return int((await execute_core(session, statement)).rowcount)


async def _mark(
    session: AsyncSession, ids: list[int], now: dt.datetime, *, status: str, code: str
) -> int:
    values = {
        "status": status,
        "error_code": code,
        "attempts": _deliveries.c.attempts + 1,
        "updated_at": now,
    }
    return await _update_queued(session, ids, values)


def stored_name(provider_id: str | None) -> str | None:
    """A provider's message name as `deliveries.provider_id` keeps it (at most 128)."""
    return (provider_id or "")[:128] or None


async def _mark_sent(
    session: AsyncSession, sent: list[tuple[int, str | None]], now: dt.datetime
) -> int:
    if not sent:
        return 0
    by_provider_id: dict[str | None, list[int]] = defaultdict(list)
    for delivery_id, provider_id in sent:
        by_provider_id[provider_id].append(delivery_id)
    if len(by_provider_id) <= 4:  # LINE: one request id for the whole multicast
        statement = _sent_with_one_name(session.get_bind().dialect.name)
        total = 0
        for provider_id, ids in by_provider_id.items():
            params = {"b_ids": ids, "b_name": provider_id, "b_now": now}
            total += int((await execute_core(session, statement, params)).rowcount)
        return total
    # FCM: one message name per recipient.
    ids = [delivery_id for delivery_id, _ in sent]
    names = [stored_name(provider_id) for _, provider_id in sent]
    if session.get_bind().dialect.name == "postgresql":
        # One statement for the whole batch: the pairs travel as two arrays.
        result = await session.execute(_SENT_FROM_ARRAYS, {"ids": ids, "names": names, "now": now})
        return int(result.rowcount)  # type: ignore[attr-defined]
    statement = (
        _deliveries.update()
        .where(
            _deliveries.c.id == bindparam("b_id"),
            status_is(_deliveries.c.status, DeliveryStatus.QUEUED),
        )
        .values(
            status=DeliveryStatus.SENT,
            error_code=None,
            attempts=_deliveries.c.attempts + 1,
            provider_id=bindparam("b_provider_id"),
            sent_at=now,
            updated_at=now,
        )
    )
    await session.execute(
        statement, [{"b_id": i, "b_provider_id": n} for i, n in zip(ids, names, strict=True)]
    )
    return len(sent)  # executemany reports no reliable rowcount on every driver


@functools.cache  # per dialect: built once (see notify.delivery.sql.execute_core)
def _sent_with_one_name(dialect: str) -> Update:
    now = bindparam("b_now", type_=UTCDateTime)
    return (
        _deliveries.update()
        .where(
            ids_param(_deliveries.c.id, "b_ids", dialect),
            status_is(_deliveries.c.status, DeliveryStatus.QUEUED),
        )
        .values(
            status=DeliveryStatus.SENT,
            error_code=None,
            attempts=_deliveries.c.attempts + 1,
            provider_id=bindparam("b_name"),
            sent_at=now,
            updated_at=now,
        )
    )


# The pairs drive the join: one primary-key lookup per pair. (A second test on `d.id`, as
# `d.id = ANY(:ids)`, once made PostgreSQL scan the rows first, estimate one, and rescan the
# whole array for each: 500 × 500 comparisons, 14 ms a batch instead of 1.)
def _mark_sent_sql(one_name: bool) -> str:
    """The marking UPDATE: one name per id (`:ids`, `:names`), or one for all (`:name`)."""
    if one_name:
        name, pairs = "CAST(:name AS VARCHAR)", "unnest(CAST(:ids AS BIGINT[])) AS v(id)"
    else:
        name = "v.name"
        pairs = "unnest(CAST(:ids AS BIGINT[]), CAST(:names AS VARCHAR[])) AS v(id, name)"
    return f"""
    UPDATE deliveries AS d
       SET status = 'sent', provider_id = {name}, error_code = NULL,
           attempts = d.attempts + 1, sent_at = :now, updated_at = :now
      FROM {pairs}
     WHERE d.id = v.id AND (d.status || '') = 'queued'
"""


_SENT_FROM_ARRAYS = text(_mark_sent_sql(one_name=False)).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger)),
    bindparam("names", type_=ARRAY(String)),
    bindparam("now", type_=UTCDateTime),
)


# Every recipient of the batch sent, and the batch released, in one statement (PostgreSQL):
# a statement commits as one, so it needs no BEGIN and COMMIT round trips around it, where
# the two UPDATEs in a transaction took four. The release is guarded by the lease token as
# `_release` does; the marks are kept even when the lease was lost, as there.
def _all_sent_statement(one_name: bool) -> TextClause:
    sql = f"""
    WITH marked AS ({_mark_sent_sql(one_name)} RETURNING 1
    ), released AS (
        UPDATE delivery_batches
           SET status = 'done', lease_token = NULL, lease_until = NULL,
               next_attempt_at = NULL, updated_at = :now, sent_at = :now
         WHERE id = :batch_id AND lease_token = :token
     RETURNING 1
    )
    SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM released)
"""
    params: list[BindParameter[Any]] = [
        bindparam("ids", type_=ARRAY(BigInteger)),
        bindparam("now", type_=UTCDateTime),
    ]
    if not one_name:
        params.append(bindparam("names", type_=ARRAY(String)))
    return text(sql).bindparams(*params)


_ALL_SENT = {one_name: _all_sent_statement(one_name) for one_name in (True, False)}


def all_sent(results: Sequence[DeliveryResult]) -> bool:
    return all(result.outcome is Outcome.SENT for result in results)


async def record_all_sent(
    conn: AsyncConnection,
    rows: Sequence[BatchRow],
    results: Sequence[DeliveryResult],
    *,
    batch_id: int,
    token: str,
    now: dt.datetime,
) -> tuple[int, bool]:
    """PostgreSQL, every result SENT (`all_sent`): mark the rows and release the batch as
    done, in one statement; returns (rows marked, whether the lease was still ours)."""
    if len(results) != len(rows):  # as record_results: never mark the wrong people sent
        raise RuntimeError(f"{len(results)} results for {len(rows)} recipients")
    names = [stored_name(result.provider_id) for result in results]
    one_name = len(set(names)) == 1  # LINE: the multicast's one request id
    params: dict[str, Any] = {
        "ids": [row.delivery_id for row in rows],
        "now": now,
        "batch_id": batch_id,
        "token": token,
    }
    params.update({"name": names[0]} if one_name else {"names": names})
    marked, released = (await conn.execute(_ALL_SENT[one_name], params)).one()
    return int(marked), bool(released)


async def mark_skipped(session: AsyncSession, ids: list[int], now: dt.datetime, code: str) -> int:
    values = {"status": DeliveryStatus.SKIPPED, "error_code": code, "updated_at": now}
    return await _update_queued(session, ids, values)
