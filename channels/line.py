"""LINE channel: one multicast per batch through line-bot-sdk v3's async client.

A pure payload builder (`build_multicast_body`, tested against LINE's OpenAPI schema) plus a
thin sender. Rich menus and insight reads live in `channels.line_admin`, the SDK plumbing and
error translation in `channels.line_sdk`; `LineChannel` has them all.

How LINE's answers become per-recipient results (one multicast = at most 500 user ids,
`X-Line-Retry-Key` = the batch's idempotency key, one custom aggregation unit when given):

- 200: everyone `sent`. LINE names no per-recipient message ids for a multicast, so
  `provider_id` is the request's `x-line-request-id`; blocked users are dropped by LINE
  without a word and look sent too.
- 409 to the retry key: an earlier attempt of this very batch was accepted (the timeout or
  5xx that made us retry hid it). Decision: everyone `sent` with `provider_id` = the
  `x-line-accepted-request-id`; nothing is raised, so the delivery engine needs no special
  case and a batch can never go out twice.
- 400 naming only `to[i]` entries: those recipients `permanent` + prune, the rest `transient`
  (LINE accepted nothing, so a retry with the same key is still a first attempt).
- any other 4xx: everyone `permanent` without prune (the message is bad, not the endpoints).
- 5xx, timeouts, connection failures: everyone `transient`.
- 401/403 raise `PermanentChannelError` and 429 raises `RateLimited` (LINE sends no
  Retry-After): they concern the whole call, and must never prune a recipient.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from linebot.v3 import messaging as line

from channels.base import ChannelName, DeliveryResult, LineMessage, Recipient, SendContext
from notify.errors import (
    AlreadyAccepted,
    ChannelError,
    InvalidInput,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)

from .line_admin import BatchStatus, FollowerStatistics, LineAdmin, UnitStatistics
from .line_sdk import API_EXCEPTIONS, JsonReadyModel, error_body, translate_error

__all__ = [
    "BatchStatus",
    "FollowerStatistics",
    "LineChannel",
    "UnitStatistics",
    "build_multicast_body",
    "translate_error",
]

MAX_RECIPIENTS = 500
MAX_MESSAGES = 5
AGGREGATION_UNIT = re.compile(r"^[a-zA-Z0-9_]{1,30}$")
_TO_INDEX = re.compile(r"^to\[(\d+)\]$")
_WHOLE_CALL_FAILURES = ("http_401", "http_403")  # bad token / no permission: prune nobody
_MODEL_CACHE_SIZE = 32
# The SDK wraps each API method in pydantic's `validate_arguments`, which validates and copies
# the request model `send_batch` has just built, on every call (a third of the adapter's CPU
# over a bare client). `raw_function` is pydantic's documented handle on the undecorated
# method: the request is still the SDK's model, serialised and sent by the SDK's client.
_MULTICAST = line.AsyncMessagingApi.multicast_with_http_info.raw_function


def build_multicast_body(
    user_ids: Sequence[str], message: LineMessage, context: SendContext
) -> dict[str, Any]:
    """The JSON body of one multicast, exactly as it crosses the wire."""
    if not 1 <= len(user_ids) <= MAX_RECIPIENTS:
        raise InvalidInput(f"a multicast takes 1 to {MAX_RECIPIENTS} user ids, not {len(user_ids)}")
    if not 1 <= len(message.messages) <= MAX_MESSAGES:
        raise InvalidInput(f"a LINE send takes 1 to {MAX_MESSAGES} message objects")
    body: dict[str, Any] = {"to": list(user_ids), "messages": [dict(m) for m in message.messages]}
    unit = context.aggregation_unit
    if unit:
        if not AGGREGATION_UNIT.match(unit):
            raise InvalidInput(f"bad LINE aggregation unit name {unit!r}")
        body["customAggregationUnits"] = [unit]
    return body


class _Multicast(line.MulticastRequest, JsonReadyModel):
    """The SDK's multicast request, built and serialized without pydantic walking each of
    the 500 ids (re-validating and copying them cost ~2 ms of CPU per request: several times
    the HTTP request itself). The body is `build_multicast_body`'s, tested against LINE's
    schema and against what crosses the wire; the message objects are still the SDK's
    validated models, serialised once per rendered message (`wire_messages`)."""

    @classmethod
    def of(cls, to: list[str], models: _MessageModels, units: list[str] | None) -> _Multicast:
        request = cls.construct(to=to, messages=models.models, custom_aggregation_units=units)
        request.__dict__["wire_messages"] = models.wire
        return request

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"to": self.to, "messages": self.__dict__["wire_messages"]}
        if self.custom_aggregation_units:
            body["customAggregationUnits"] = self.custom_aggregation_units
        return body


@dataclass(frozen=True, slots=True)
class _MessageModels:
    message: LineMessage  # the rendered message these were made from (identity-checked)
    models: list[Any]  # the SDK's validated message models
    wire: list[dict[str, Any]]  # their JSON form, as the SDK serialises them


class LineChannel(LineAdmin):
    name: ClassVar[ChannelName] = ChannelName.LINE
    max_batch: ClassVar[int] = MAX_RECIPIENTS
    max_body_chars: ClassVar[int] = 5000
    supports_title: ClassVar[bool] = False

    def __init__(
        self,
        *,
        api_url: str,
        data_url: str,
        channel_access_token: str,
        timeout_s: float = 10.0,
        max_connections: int = 16,
    ) -> None:
        super().__init__(
            api_url=api_url,
            data_url=data_url,
            channel_access_token=channel_access_token,
            timeout_s=timeout_s,
            max_connections=max_connections,
        )
        # Message models by LineMessage identity: one rendered message serves many batches.
        self._models: dict[int, _MessageModels] = {}

    def _message_models(self, message: LineMessage, body: dict[str, Any]) -> _MessageModels:
        cached = self._models.get(id(message))
        if cached is not None and cached.message is message:
            return cached
        try:
            models = [line.Message.from_dict(m) for m in body["messages"]]
            wire = [model.to_dict() for model in models]
        except (ValueError, TypeError) as exc:  # includes pydantic's ValidationError
            raise PermanentChannelError(f"bad LINE message: {exc}", provider_code="client") from exc
        if len(self._models) >= _MODEL_CACHE_SIZE:
            self._models.pop(next(iter(self._models)))
        self._models[id(message)] = made = _MessageModels(message, models, wire)
        return made

    async def send_batch(
        self, recipients: Sequence[Recipient], message: LineMessage, context: SendContext
    ) -> list[DeliveryResult]:
        body = build_multicast_body([r.address for r in recipients], message, context)
        n = len(recipients)
        try:
            request = _Multicast.of(
                body["to"],
                self._message_models(message, body),
                body.get("customAggregationUnits"),
            )
            messaging = await self.messaging()
            response = await self._call(
                functools.partial(_MULTICAST, messaging),
                request,
                x_line_retry_key=context.idempotency_key,
            )
        except AlreadyAccepted as accepted:
            return [DeliveryResult.sent(accepted.accepted_request_id)] * n
        except RateLimited:
            raise
        except TransientChannelError as error:
            return [DeliveryResult.transient(error.provider_code or error.code, error.message)] * n
        except PermanentChannelError as error:
            if error.provider_code in _WHOLE_CALL_FAILURES:
                raise
            return _results_for_bad_request(error, n)
        return [DeliveryResult.sent(response.headers.get("x-line-request-id"))] * n


def _results_for_bad_request(error: ChannelError, n: int) -> list[DeliveryResult]:
    """A 400 that names only `to[i]` entries condemns those ids, not the whole batch."""
    cause = error.__cause__
    details = error_body(cause).get("details", []) if isinstance(cause, API_EXCEPTIONS) else []
    bad: set[int] = set()
    for detail in details if isinstance(details, list) else []:
        match = _TO_INDEX.match(str((detail or {}).get("property", "")))
        if match is None:
            bad.clear()
            break
        bad.add(int(match.group(1)))
    code = error.provider_code or error.code
    if not bad:  # the message itself is wrong: nobody can get it, nobody is pruned
        return [DeliveryResult.permanent(code, error.message)] * n
    return [
        DeliveryResult.permanent("invalid_user_id", error.message, prune=True)
        if i in bad
        else DeliveryResult.transient("batch_rejected", "another user id in the batch was invalid")
        for i in range(n)
    ]
