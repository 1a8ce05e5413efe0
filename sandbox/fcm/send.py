"""`POST /v1/projects/{project}/messages:send`, with FCM's rules and error answers."""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web

from sandbox.common import STATE_KEY, SandboxState
from sandbox.fcm.errors import (
    INVALID_TOKEN_MESSAGE,
    Answer,
    google_answer,
    invalid_argument,
    ok_answer,
)
from sandbox.fcm.schema import FieldViolation, RequestValidator
from sandbox.fcm.state import FCM_KEY, TOPIC_NAME, FcmWorld
from sandbox.fcm.topics import ConditionError, condition_audience

VALIDATOR_KEY: web.AppKey[RequestValidator] = web.AppKey("fcm_validator", RequestValidator)
_TARGETS = ("token", "topic", "condition", "fid")
_RESERVED_DATA_KEYS = ("from", "message_type")
_RESERVED_DATA_PREFIXES = ("google.", "gcm.notification.")
MAX_PAYLOAD_BYTES = 4096  # FCM's limit for notification + data


class _VerdictCache:
    """Messages of one broadcast differ only in their token: judge each shape once (the
    schema's verdict, then FCM's own rules). A body holding its token other than exactly
    once is judged afresh, so two different messages never share a key."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._verdicts: OrderedDict[bytes, list[FieldViolation]] = OrderedDict()

    def violations(
        self, validator: RequestValidator, raw: bytes, body: Any, token: str
    ) -> list[FieldViolation]:
        token_bytes = token.encode()
        if not token or raw.count(token_bytes) != 1:
            return _judge(validator, body)
        key = raw.replace(token_bytes, b"")
        cached = self._verdicts.get(key)
        if cached is None:
            cached = _judge(validator, body)
            self._verdicts[key] = cached
            if len(self._verdicts) > self._size:
                self._verdicts.popitem(last=False)
        return cached


def _judge(validator: RequestValidator, body: dict[str, Any]) -> list[FieldViolation]:
    return validator.violations(body) or _semantic_violations(body["message"])


CACHE_KEY: web.AppKey[_VerdictCache] = web.AppKey("fcm_verdicts", _VerdictCache)


def _semantic_violations(message: dict[str, Any]) -> list[FieldViolation]:
    targets = [t for t in _TARGETS if message.get(t)]
    if len(targets) != 1:
        return [FieldViolation("message", "Exactly one of token, topic, condition or fid.")]
    if message.get("android") and (message.get("androidV2") or message.get("android_v2")):
        return [FieldViolation("message.android", "android and androidV2 are exclusive.")]
    found = []
    for key in message.get("data") or {}:
        if key in _RESERVED_DATA_KEYS or key.startswith(_RESERVED_DATA_PREFIXES):
            found.append(FieldViolation(f"message.data.{key}", f"Invalid data key: {key}"))
    topic = message.get("topic")
    if topic is not None and not TOPIC_NAME.match(topic):
        found.append(FieldViolation("message.topic", "Invalid topic name."))
    payload = {"notification": message.get("notification"), "data": message.get("data")}
    if len(json.dumps(payload, ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES:
        found.append(FieldViolation("message", "Message is too big."))
    return found


def _quota_exceeded(state: SandboxState, key: str, limit: int) -> Answer | None:
    if state.limiter.allow(key, limit, 60.0):
        return None
    retry_after = max(1, math.ceil(60 - time.monotonic() % 60))
    return google_answer(
        429,
        "Quota exceeded for quota metric 'Messages' and limit 'Messages per minute'.",
        fcm_code="QUOTA_EXCEEDED",
        retry_after=str(retry_after),
    )


async def send_message(request: web.Request) -> web.Response:
    """The aiohttp route (the app's own URL); the sandbox's public URL answers the same
    requests through `sandbox.fcm.front`, by the same `answer_send`."""
    raw = await request.read()
    authorization = request.headers.get("Authorization")
    return answer_send(request.app, request.match_info["project"], authorization, raw).response()


def answer_send(
    app: web.Application, project: str, authorization: str | None, raw: bytes
) -> Answer:
    """`POST /v1/projects/{project}/messages:send` with this body, judged by FCM's rules."""
    state, world = app[STATE_KEY], app[FCM_KEY]
    issued = world.oauth.check_bearer(authorization)
    if issued is None:
        return google_answer(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
        )
    if (world.project_id and project != world.project_id) or (
        issued.project_id and issued.project_id != project
    ):
        return google_answer(
            403,
            f"Permission 'cloudmessaging.messages.create' denied on resource "
            f"'//cloudresourcemanager.googleapis.com/projects/{project}'",
        )
    try:
        body = json.loads(raw)
    except ValueError:
        return invalid_argument("Invalid JSON payload received.")
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return invalid_argument("Invalid JSON payload received. message is required.")
    token = message.get("token") or message.get("fid") or ""
    violations = app[CACHE_KEY].violations(
        app[VALIDATOR_KEY], raw, body, token if isinstance(token, str) else ""
    )
    if violations:
        return invalid_argument(violations[0].description, violations)
    if token and world.token_is_malformed(token):
        state.counters.add("INVALID_ARGUMENT", token)
        return invalid_argument(
            INVALID_TOKEN_MESSAGE, [FieldViolation("message.token", INVALID_TOKEN_MESSAGE)]
        )
    limits = state.limits
    if limits["enabled"]:
        if (refused := _quota_exceeded(state, "project", limits["project_per_min"])) is not None:
            return refused
    if token:
        return _deliver_to_device(state, world, project, token, body)
    return _deliver_to_topic(state, world, project, message, body)


def _deliver_to_device(
    state: SandboxState, world: FcmWorld, project: str, token: str, body: dict[str, Any]
) -> Answer:
    if world.token_is_unregistered(token):
        state.counters.add("UNREGISTERED", token)
        return google_answer(404, "Requested entity was not found.", fcm_code="UNREGISTERED")
    if token in world.sender_id_mismatch:
        state.counters.add("SENDER_ID_MISMATCH", token)
        return google_answer(403, "SenderId mismatch", fcm_code="SENDER_ID_MISMATCH")
    if state.limits["enabled"]:
        refused = _quota_exceeded(state, f"device:{token}", state.limits["device_per_min"])
        if refused is not None:
            state.counters.add("QUOTA_EXCEEDED", token)
            return refused
    name = world.next_message_name(project)
    if body.get("validateOnly") or body.get("validate_only"):
        state.counters.add("validated", token)
    else:
        state.counters.add("delivered", token)
    return ok_answer({"name": name})


def _deliver_to_topic(
    state: SandboxState, world: FcmWorld, project: str, message: dict[str, Any], body: dict
) -> Answer:
    if message.get("topic"):
        label, audience = message["topic"], set(world.topics.get(message["topic"], set()))
    else:
        try:
            label, audience = (
                message["condition"],
                condition_audience(world.topics, message["condition"]),
            )
        except ConditionError as exc:
            return invalid_argument(str(exc), [FieldViolation("message.condition", str(exc))])
    name = world.next_message_name(project)
    if not (body.get("validateOnly") or body.get("validate_only")):
        state.counters.add("topic_messages", label)
        live = [t for t in audience if not world.token_is_unregistered(t)]
        state.counters.add_many("delivered", live)
    return ok_answer({"name": name})
