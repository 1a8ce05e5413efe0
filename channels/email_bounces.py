"""Read bounce and complaint messages: hard vs soft vs complaint, for which address.

Handles RFC 3464 delivery-status reports, RFC 5965 ARF feedback reports and the free-text
notices that Gmail, Yahoo! JAPAN, au (KDDI / ezweb) and others send. When the returned headers
are included, `X-Endpoint-Id` / `X-Broadcast-Id` (set by `channels.email_mime`) tie the bounce
to the endpoint without trusting the address alone.

A hard bounce or a complaint means: stop mailing that address (prune). Soft bounces (mailbox
full, greylisting, policy refusals) are counted, never pruned on one occurrence.
The input is hostile: size-capped, parsed by the standard library, never executed or fetched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from typing import Literal

MAX_BOUNCE_BYTES = 2 * 1024 * 1024
BounceKind = Literal["hard", "soft", "complaint"]

_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+\-=]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})>?")
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SOFT_WORDS = (
    "mailbox is full", "mailbox full", "over quota", "quota exceeded", "insufficient storage",
    "try again", "temporar", "一杯", "容量",
)  # fmt: skip
_HARD_WORDS = (
    "user unknown", "unknown user", "unknown address", "no such user", "does not exist",
    "not exist", "mailbox unavailable", "recipient address rejected", "rejected",
    "存在しません", "宛先不明",
)  # fmt: skip
_NOT_THE_ADDRESS = ("5.3.", "5.4.", "5.5.", "5.6.", "5.7.")
_ORIGINAL_MARKERS = ("----- original message", "--- below this line is a copy", "original message")


@dataclass(frozen=True, slots=True)
class Bounce:
    kind: BounceKind
    recipient: str | None
    status: str | None = None  # RFC 3463 enhanced status, when one was given
    diagnostic: str = ""
    endpoint_id: int | None = None
    broadcast_id: int | None = None

    @property
    def prune(self) -> bool:
        return self.kind in ("hard", "complaint")


def classify(status: str | None, diagnostic: str) -> BounceKind:
    text = diagnostic.lower()
    if any(word in text for word in _SOFT_WORDS) or status == "5.2.2":
        return "soft"
    if status and status.startswith("4."):
        return "soft"
    if status and status.startswith("5."):
        if status.startswith(_NOT_THE_ADDRESS) and not any(w in text for w in _HARD_WORDS[:6]):
            return "soft"  # policy / system refusal: not the mailbox's fault
        return "hard"
    return "hard" if any(word in text for word in _HARD_WORDS) else "soft"


def parse_bounce(raw: bytes) -> Bounce | None:
    """The bounce this message reports, or None when it is not a bounce / complaint."""
    if len(raw) > MAX_BOUNCE_BYTES:
        return None
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    original = _original_headers(mail)
    ids = _ids(original)
    if mail.get_content_type() == "multipart/report":
        report_type = str(mail.get_param("report-type", "")).lower()
        if report_type == "feedback-report":
            return _complaint(mail, original, ids)
        if report_type == "delivery-status":
            found = _dsn(mail, ids)
            if found is not None:
                return found
    return _free_text(mail, ids)


def _ids(headers: Message | None) -> tuple[int | None, int | None]:
    def number(name: str) -> int | None:
        value = str(headers.get(name, "")).strip() if headers is not None else ""
        return int(value) if value.isdigit() else None

    return number("X-Endpoint-Id"), number("X-Broadcast-Id")


def _original_headers(mail: Message) -> Message | None:
    for part in mail.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            return HeaderParser(policy=policy.default).parsestr(_text(part))
    return None


def _complaint(mail: Message, original: Message | None, ids: tuple) -> Bounce:
    recipient = None
    for part in mail.walk():
        if part.get_content_type() == "message/feedback-report":
            fields = _fields(part)
            recipient = _address(fields.get("original-rcpt-to", ""))
    if recipient is None and original is not None:
        recipient = _address(str(original.get("To", "")))
    return Bounce("complaint", recipient, None, "feedback report", *ids)


def _dsn(mail: Message, ids: tuple) -> Bounce | None:
    for part in mail.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            if action not in ("failed", "delayed"):
                continue
            recipient = _address(str(block.get("Final-Recipient", "")).split(";")[-1])
            enhanced = _ENHANCED.search(str(block.get("Status", "")))
            status = enhanced.group(1) if enhanced else None
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            kind = "soft" if action == "delayed" else classify(status, diagnostic)
            return Bounce(kind, recipient, status, diagnostic[:500], *ids)
    return None


def _free_text(mail: Message, ids: tuple) -> Bounce | None:
    text = _notice_text(mail)
    lowered = text.lower()
    if not any(w in lowered for w in (*_HARD_WORDS, *_SOFT_WORDS, "could not be delivered")):
        return None
    recipient = _address(str(mail.get("X-Failed-Recipients", ""))) or _address(text)
    enhanced = _ENHANCED.search(text)
    status = enhanced.group(1) if enhanced else None
    diagnostic = " ".join(text.split())[:500]
    return Bounce(classify(status, text), recipient, status, diagnostic, *ids)


def _notice_text(mail: Message) -> str:
    """The human-readable notice, without the copy of the original message."""
    parts = []
    for part in mail.walk():
        if part.get_content_type() == "message/rfc822":
            break
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/html":
            parts.append(_text(part))
    text = "\n".join(parts)
    lowered = text.lower()
    cut = min((i for m in _ORIGINAL_MARKERS if (i := lowered.find(m)) > 0), default=len(text))
    return text[:cut]


def _text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "us-ascii"
    for candidate in (charset, "utf-8", "iso-2022-jp", "shift_jis"):
        try:
            return data.decode(candidate)  # a mislabelled charset is common (au sends UTF-8)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("utf-8", "replace")


def _fields(part: Message) -> dict[str, str]:
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    fields: dict[str, str] = {}
    for block in blocks:
        if isinstance(block, Message):
            fields.update({k.lower(): str(v) for k, v in block.items()})
    return fields


def _address(text: str) -> str | None:
    match = _ADDRESS.search(text or "")
    return match.group(1).lower() if match else None
