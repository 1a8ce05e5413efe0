"""The one small interface every delivery channel implements.

A channel takes a batch of recipients (at most `max_batch`) and one rendered message, and
returns exactly one `DeliveryResult` per recipient, in the same order. It never returns a
single bool for a batch: who was sent, who must be pruned, who should be retried.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


class ChannelName(enum.StrEnum):
    LINE = "line"
    FCM = "fcm"
    EMAIL = "email"


class Outcome(enum.StrEnum):
    SENT = "sent"  # accepted by the provider (provider_id set when it gives one)
    PERMANENT = "permanent"  # never retry; prune the endpoint when `prune` is set
    TRANSIENT = "transient"  # retry later with backoff


@dataclass(frozen=True, slots=True)
class Recipient:
    """One endpoint to deliver to. `address` is the LINE user id, FCM token or email address."""

    endpoint_id: int
    address: str
    resident_id: int | None = None
    language: str = "ja"
    # Per-recipient extras (e.g. the email tracking / unsubscribe tokens).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    provider_id: str | None = None
    error_code: str | None = None
    detail: str | None = None
    prune: bool = False  # permanent failure because the endpoint itself is dead
    retry_after_s: float | None = None

    @classmethod
    def sent(cls, provider_id: str | None = None) -> DeliveryResult:
        return cls(Outcome.SENT, provider_id=provider_id)

    @classmethod
    def permanent(cls, code: str, detail: str = "", *, prune: bool = False) -> DeliveryResult:
        return cls(Outcome.PERMANENT, error_code=code, detail=detail, prune=prune)

    @classmethod
    def transient(
        cls, code: str, detail: str = "", *, retry_after_s: float | None = None
    ) -> DeliveryResult:
        return cls(Outcome.TRANSIENT, error_code=code, detail=detail, retry_after_s=retry_after_s)


@dataclass(frozen=True, slots=True)
class SendContext:
    """What a send needs besides the recipients.

    `idempotency_key` is made (and stored) by the delivery engine before the first attempt and
    reused on every retry of the same batch (LINE: X-Line-Retry-Key). `aggregation_unit` is the
    LINE custom aggregation unit name for statistics, or None.
    """

    broadcast_id: int
    idempotency_key: str | None = None
    aggregation_unit: str | None = None
    emergency: bool = False


# --- the rendered message each channel takes (made by notify.compose, one per language) ---


@dataclass(frozen=True, slots=True)
class LineMessage:
    """Up to 5 LINE message objects, as the JSON the Messaging API expects (text / flex)."""

    messages: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class PushMessage:
    title: str
    body: str
    data: Mapping[str, str] = field(default_factory=dict)  # FCM data values are strings
    emergency: bool = False  # high priority, critical sound category


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """Subject, plain text and HTML. The adapter adds per-recipient parts from
    `Recipient.extra`: `unsubscribe_url` (List-Unsubscribe + footer), `open_pixel_url`
    (an <img> at the end of the HTML) and `click_url_prefix` (links rewritten through it)."""

    subject: str
    text: str
    html: str | None = None


class Channel(Protocol):
    """Limits are class attributes; shared code (compose, delivery) enforces them."""

    name: ClassVar[ChannelName]
    max_batch: ClassVar[int]  # recipients per send_batch call
    max_body_chars: ClassVar[int]
    supports_title: ClassVar[bool]

    async def send_batch(
        self, recipients: Sequence[Recipient], message: Any, context: SendContext
    ) -> list[DeliveryResult]:
        """Deliver `message` to every recipient; one result per recipient, in order.

        A repeat that the provider recognises (LINE's 409 to a retry key) is reported as
        sent, with the accepted request's id. Raises only for failures of the whole call that
        are not about recipients (RateLimited, bad credentials); never lets an SDK error escape.
        """
        ...

    async def close(self) -> None: ...
