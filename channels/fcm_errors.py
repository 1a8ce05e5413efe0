"""FCM answers and transport failures → one `DeliveryResult` (or one ChannelError).

The FCM error codes are the `ErrorCode` enum of FCM HTTP v1 (`google.firebase.fcm.v1.FcmError`);
when a response has no FcmError detail, Google's canonical status decides.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from google.auth import exceptions as google_exceptions

from channels.base import DeliveryResult, Outcome
from notify.errors import (
    ChannelError,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
DEFAULT_QUOTA_BACKOFF_S = 60.0

# FcmError.ErrorCode → (outcome, prune). INVALID_ARGUMENT prunes only for a bad token.
FCM_ERROR_CODES: dict[str, tuple[Outcome, bool]] = {
    "UNSPECIFIED_ERROR": (Outcome.TRANSIENT, False),
    "INVALID_ARGUMENT": (Outcome.PERMANENT, False),
    "UNREGISTERED": (Outcome.PERMANENT, True),
    "SENDER_ID_MISMATCH": (Outcome.PERMANENT, True),
    "QUOTA_EXCEEDED": (Outcome.TRANSIENT, False),
    "UNAVAILABLE": (Outcome.TRANSIENT, False),
    "INTERNAL": (Outcome.TRANSIENT, False),
    "THIRD_PARTY_AUTH_ERROR": (Outcome.PERMANENT, False),  # APNs / web-push keys: fix config
    "APNS_AUTH_ERROR": (Outcome.PERMANENT, False),  # the legacy name of the one above
}
# Canonical google.rpc statuses (when FCM gives no FcmError detail).
CANONICAL_STATUSES: dict[str, tuple[Outcome, bool]] = {
    "INVALID_ARGUMENT": (Outcome.PERMANENT, False),
    "FAILED_PRECONDITION": (Outcome.PERMANENT, False),
    "OUT_OF_RANGE": (Outcome.PERMANENT, False),
    "UNAUTHENTICATED": (Outcome.TRANSIENT, False),  # token expired between refreshes
    "PERMISSION_DENIED": (Outcome.PERMANENT, False),
    "NOT_FOUND": (Outcome.PERMANENT, True),
    "ALREADY_EXISTS": (Outcome.PERMANENT, False),
    "CONFLICT": (Outcome.TRANSIENT, False),
    "ABORTED": (Outcome.TRANSIENT, False),
    "RESOURCE_EXHAUSTED": (Outcome.TRANSIENT, False),
    "CANCELLED": (Outcome.TRANSIENT, False),
    "DATA_LOSS": (Outcome.TRANSIENT, False),
    "UNKNOWN": (Outcome.TRANSIENT, False),
    "INTERNAL": (Outcome.TRANSIENT, False),
    "UNAVAILABLE": (Outcome.TRANSIENT, False),
    "DEADLINE_EXCEEDED": (Outcome.TRANSIENT, False),
    "UNIMPLEMENTED": (Outcome.PERMANENT, False),
}


def _parse_error(payload: bytes) -> tuple[str | None, str | None, str, list[dict[str, Any]]]:
    """→ (fcm error code, canonical status, message, field violations)."""
    try:
        error = json.loads(payload)["error"]
        message = str(error.get("message", ""))
        fcm_code, violations = None, []
        for detail in error.get("details", []):
            if detail.get("@type") == FCM_ERROR_TYPE:
                fcm_code = detail.get("errorCode")
            elif detail.get("@type") == BAD_REQUEST_TYPE:
                violations.extend(detail.get("fieldViolations", []))
        return fcm_code, error.get("status"), message, violations
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, None, payload[:200].decode("utf-8", "replace"), []


def _token_is_invalid(message: str, violations: list[dict[str, Any]]) -> bool:
    if any(str(v.get("field", "")) in ("message.token", "message.fid") for v in violations):
        return True
    return "registration token" in message.lower()


def _retry_after(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def classify_response(status: int, payload: bytes, retry_after: str | None) -> DeliveryResult:
    if 200 <= status < 300:
        try:
            return DeliveryResult.sent(str(json.loads(payload.decode())["name"]))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            return DeliveryResult.sent(None)
    fcm_code, canonical, message, violations = _parse_error(payload)
    if fcm_code in FCM_ERROR_CODES:
        code: str = fcm_code
        outcome, prune = FCM_ERROR_CODES[code]
        if code == "INVALID_ARGUMENT":
            prune = _token_is_invalid(message, violations)
    elif canonical in CANONICAL_STATUSES:
        code = canonical
        outcome, prune = CANONICAL_STATUSES[code]
    else:
        code = f"HTTP_{status}"
        outcome, prune = (
            (Outcome.TRANSIENT if status >= 500 or status == 429 else Outcome.PERMANENT),
            False,
        )
    if status == 429 or code in ("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"):
        wait = _retry_after(retry_after) or DEFAULT_QUOTA_BACKOFF_S
        return DeliveryResult.transient("QUOTA_EXCEEDED", message, retry_after_s=wait)
    if outcome is Outcome.TRANSIENT:
        return DeliveryResult.transient(code, message, retry_after_s=_retry_after(retry_after))
    return DeliveryResult.permanent(code, message, prune=prune)


def translate_exception(exc: BaseException) -> DeliveryResult:
    """Transport / credential failures of one send → a result (never an escaping SDK error)."""
    if isinstance(exc, RateLimited):
        return DeliveryResult.transient(
            "QUOTA_EXCEEDED", exc.message, retry_after_s=exc.retry_after_s
        )
    if isinstance(exc, TransientChannelError):
        return DeliveryResult.transient("AUTH_UNREACHABLE", exc.message)
    if isinstance(exc, ChannelError):
        return DeliveryResult.transient("CREDENTIALS", exc.message)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return DeliveryResult.transient("TIMEOUT", "no answer from FCM in time")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DeliveryResult.transient("NETWORK", _describe(exc))
    if isinstance(exc, google_exceptions.GoogleAuthError):
        return DeliveryResult.transient("CREDENTIALS", _describe(exc))
    return DeliveryResult.transient("UNEXPECTED", _describe(exc))


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except Exception:  # a half-built exception must not break error handling
        return type(exc).__name__


def raise_for_single_send(result: DeliveryResult) -> str:
    """For one-off sends (topic messages): the message name, or the matching ChannelError."""
    if result.outcome is Outcome.SENT:
        return result.provider_id or ""
    text = f"FCM refused the message: {result.error_code} {result.detail or ''}".strip()
    if result.error_code == "QUOTA_EXCEEDED":
        raise RateLimited(text, provider_code=result.error_code, retry_after_s=result.retry_after_s)
    if result.outcome is Outcome.TRANSIENT:
        raise TransientChannelError(text, provider_code=result.error_code)
    raise PermanentChannelError(text, provider_code=result.error_code)
