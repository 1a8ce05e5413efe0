"""aiosmtplib errors → one `DeliveryResult` per recipient.

SMTP reply codes: 4xx is temporary, 5xx permanent. A permanent answer prunes the address only
when the enhanced status code (RFC 3463) blames the mailbox or its domain (5.1.x, 5.2.1) or
says nothing more precise; policy (5.7.x), message (5.6.x) and system/network (5.3.x, 5.4.x,
5.5.x) answers are not the address's fault. 5.2.2 (mailbox full) is treated as temporary.
"""

from __future__ import annotations

import re

import aiosmtplib

from channels.base import DeliveryResult

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_NOT_THE_ADDRESS = ("5.3.", "5.4.", "5.5.", "5.6.", "5.7.")


def enhanced_status(text: str) -> str | None:
    match = _ENHANCED.match(text or "")
    return ".".join(match.groups()) if match else None


def classify_reply(code: int, text: str, *, stage: str) -> DeliveryResult:
    """One SMTP reply for one recipient; `stage` is RCPT, MAIL, DATA or SESSION."""
    status = enhanced_status(text)
    label = f"SMTP_{code}"
    detail = f"{stage}: {code} {text}".strip()
    if 400 <= code < 500 or status == "5.2.2":
        return DeliveryResult.transient(label, detail)
    if 500 <= code < 600:
        blames_address = stage == "RCPT" and not (status or "").startswith(_NOT_THE_ADDRESS)
        return DeliveryResult.permanent(label, detail, prune=blames_address)
    return DeliveryResult.transient(label, detail)


def classify_smtp_error(exc: BaseException) -> DeliveryResult:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0] if exc.recipients else None
        if refused is None:
            return DeliveryResult.transient("SMTP_REFUSED", "recipients refused")
        return classify_reply(refused.code, refused.message, stage="RCPT")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return classify_reply(exc.code, exc.message, stage="RCPT")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return classify_reply(exc.code, exc.message, stage="MAIL")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return classify_reply(exc.code, exc.message, stage="DATA")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryResult.transient("SMTP_AUTH", f"{exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return classify_reply(exc.code, exc.message, stage="SESSION")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return DeliveryResult.transient("TIMEOUT", "no answer from the SMTP server in time")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # e.g. a non-ASCII address and a server without SMTPUTF8: no retry will help.
        return DeliveryResult.permanent("SMTP_NOT_SUPPORTED", _describe(exc))
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return DeliveryResult.transient("NETWORK", _describe(exc))
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot send safely
        return DeliveryResult.permanent("BAD_ADDRESS", _describe(exc), prune=True)
    return DeliveryResult.transient("UNEXPECTED", _describe(exc))


def is_connection_lost(exc: BaseException) -> bool:
    """After this error the session cannot be reused (reconnect for the next message)."""
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 421:
        return True
    return isinstance(
        exc,
        aiosmtplib.SMTPServerDisconnected
        | aiosmtplib.SMTPTimeoutError
        | aiosmtplib.SMTPConnectError
        | TimeoutError
        | OSError,
    ) or not isinstance(exc, aiosmtplib.SMTPException | ValueError)


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except Exception:  # a half-built exception must not break error handling
        return type(exc).__name__
