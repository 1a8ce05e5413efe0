"""Sending (push, multicast, broadcast, narrowcast), validation, quota, units and profiles.

Bodies reach these handlers already validated against the OpenAPI schema (the middleware
does it); here live the rules the schema cannot say: retry keys, quota, blocked users,
the monthly cap of aggregation unit names.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

from aiohttp import web

from .errors import (
    NOT_FOUND,
    QUOTA_EXCEEDED,
    RETRY_KEY_ACCEPTED,
    LineApiError,
    body_errors,
    invalid,
)
from .rules import PUSH_TARGET, USER_ID, message_details, user_id_details
from .state import LINE_STATE, LineState, SendRecord

BODY: web.RequestKey[Any] = web.RequestKey("line_body", object)  # parsed, schema-checked
REQUEST_ID: web.RequestKey[str] = web.RequestKey("line_request_id", str)
QUOTABLE = frozenset({"text", "textV2", "sticker", "image", "video"})
UNIT_CAP_MESSAGE = "The number of custom aggregation units used this month has reached the limit"


def _retry_key(request: web.Request, state: LineState) -> str | None:
    key = request.headers.get("X-Line-Retry-Key")
    if key is None:
        return None
    try:
        uuid.UUID(key)
    except ValueError:
        raise LineApiError(400, "The value for the 'X-Line-Retry-Key' header is invalid") from None
    accepted = state.accepted_key(key)
    if accepted is not None:
        extra = {"sentMessages": accepted.sent_messages} if accepted.sent_messages else {}
        raise LineApiError(
            409,
            RETRY_KEY_ACCEPTED,
            headers={"x-line-accepted-request-id": accepted.request_id},
            extra=extra,
        )
    return key


def _admit(
    request: web.Request, recipients: int, units: list[str] | None = None
) -> tuple[LineState, dict[str, Any], str | None]:
    """Checks shared by every send: message rules, retry key, quota, unit cap."""
    state, body = request.app[LINE_STATE], request[BODY]
    details = message_details(body.get("messages"))
    if details:
        raise body_errors(details)
    key = _retry_key(request, state)
    if not state.quota_allows(recipients):
        raise LineApiError(429, QUOTA_EXCEEDED)
    for unit in units or []:
        if not state.unit_allowed(unit):
            raise invalid("customAggregationUnits", UNIT_CAP_MESSAGE)
    return state, body, key


async def push(request: web.Request) -> web.Response:
    to = request[BODY]["to"]
    if not PUSH_TARGET.match(to):
        raise invalid("to", "Invalid user ID")
    units = request[BODY].get("customAggregationUnits") or []
    state, body, key = _admit(request, 1, units)
    state.deliver([to], len(body["messages"]), units[0] if units else None, None)
    sent = [
        {"id": str(secrets.randbelow(9 * 10**17) + 10**17)}
        | ({"quoteToken": secrets.token_urlsafe(48)} if m.get("type") in QUOTABLE else {})
        for m in body["messages"]
    ]
    if key is not None:
        state.remember_key(key, request[REQUEST_ID], sent)
    return web.json_response({"sentMessages": sent})


async def multicast(request: web.Request) -> web.Response:
    to: list[str] = request[BODY]["to"]
    details = user_id_details(to, "to")
    if details:
        raise body_errors(details)
    units = request[BODY].get("customAggregationUnits") or []
    state, body, key = _admit(request, len(set(to)), units)
    state.deliver(to, len(body["messages"]), units[0] if units else None, None)
    if key is not None:
        state.remember_key(key, request[REQUEST_ID], None)
    return web.json_response({})  # LINE answers a multicast with an empty object


def _targets(state: LineState, limit: int | None) -> list[str]:
    targets = [u for u in state.followers if u not in state.blocked]
    if limit is not None and limit < len(targets):
        targets = state.rng.sample(targets, limit)
    return targets


async def _send_to_followers(request: web.Request, kind: str, limit: int | None) -> SendRecord:
    state = request.app[LINE_STATE]
    targets = _targets(state, limit)
    state, body, key = _admit(request, len(targets))
    record = state.new_record(kind, request[REQUEST_ID])
    record.target = len(targets)
    bubbles = len(body["messages"])
    for start in range(0, len(targets), 10_000):  # big audiences: yield between chunks
        state.deliver(targets[start : start + 10_000], bubbles, None, record)
        await asyncio.sleep(0)
    if key is not None:
        state.remember_key(key, request[REQUEST_ID], None)
    return record


async def broadcast(request: web.Request) -> web.Response:
    await _send_to_followers(request, "broadcast", None)
    return web.json_response({})


async def narrowcast(request: web.Request) -> web.Response:
    limit = (request[BODY].get("limit") or {}).get("max")
    await _send_to_followers(request, "narrowcast", limit)
    return web.json_response({}, status=202)


async def narrowcast_progress(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    record = state.records.get(request.query["requestId"])
    if record is None or record.kind != "narrowcast":
        raise LineApiError(404, NOT_FOUND)
    at = state.clock.iso(record.accepted_at)
    return web.json_response(
        {
            "phase": "succeeded",
            "successCount": record.delivered,
            "failureCount": record.target - record.delivered,
            "targetCount": record.target,
            "acceptedTime": at,
            "completedTime": at,
        }
    )


async def validate_messages(request: web.Request) -> web.Response:
    details = message_details(request[BODY].get("messages"))
    if details:
        raise body_errors(details)
    return web.json_response({})


async def quota(request: web.Request) -> web.Response:
    limit = request.app[LINE_STATE].config.quota
    if limit is None:
        return web.json_response({"type": "none"})
    return web.json_response({"type": "limited", "value": limit})


async def consumption(request: web.Request) -> web.Response:
    return web.json_response({"totalUsage": request.app[LINE_STATE].consumption()})


async def aggregation_info(request: web.Request) -> web.Response:
    used = len(request.app[LINE_STATE].unit_names())
    return web.json_response({"numOfCustomAggregationUnits": used})


async def aggregation_list(request: web.Request) -> web.Response:
    names = request.app[LINE_STATE].unit_names()
    try:
        limit = min(int(request.query.get("limit", "100")), 100)
        start = int(request.query.get("start", "0"))
    except ValueError:
        raise LineApiError(400, "Invalid limit or start") from None
    page: dict[str, Any] = {"customAggregationUnits": names[start : start + limit]}
    if start + limit < len(names):
        page["next"] = str(start + limit)
    return web.json_response(page)


async def profile(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    user_id = request.match_info["userId"]
    if not USER_ID.match(user_id) or user_id in state.blocked:
        raise LineApiError(404, NOT_FOUND)
    name = state.display_names.get(user_id, f"LINE利用者 {user_id[-4:]}")
    return web.json_response({"userId": user_id, "displayName": name, "language": "ja"})


async def follower_ids(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    ids = [u for u in state.followers if u not in state.blocked]
    try:
        limit = min(int(request.query.get("limit", "300")), 1000)
        start = int(request.query.get("start", "0") or 0)
    except ValueError:
        raise LineApiError(400, "Invalid limit or start") from None
    page: dict[str, Any] = {"userIds": ids[start : start + limit]}
    if start + limit < len(ids):
        page["next"] = str(start + limit)
    return web.json_response(page)


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("POST", "/v2/bot/message/push", push)
    add("POST", "/v2/bot/message/multicast", multicast)
    add("POST", "/v2/bot/message/broadcast", broadcast)
    add("POST", "/v2/bot/message/narrowcast", narrowcast)
    add("GET", "/v2/bot/message/progress/narrowcast", narrowcast_progress)
    for kind in ("reply", "push", "multicast", "narrowcast", "broadcast"):
        add("POST", f"/v2/bot/message/validate/{kind}", validate_messages)
    add("GET", "/v2/bot/message/quota", quota)
    add("GET", "/v2/bot/message/quota/consumption", consumption)
    add("GET", "/v2/bot/message/aggregation/info", aggregation_info)
    add("GET", "/v2/bot/message/aggregation/list", aggregation_list)
    add("GET", "/v2/bot/profile/{userId}", profile)
    add("GET", "/v2/bot/followers/ids", follower_ids)
