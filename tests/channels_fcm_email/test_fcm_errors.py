"""Every FCM error code and every transport / credential exception is mapped at the boundary."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from firebase_admin import _utils as firebase_utils
from firebase_admin import messaging
from google.auth import exceptions as google_exceptions

from channels.base import Outcome
from channels.fcm_errors import (
    CANONICAL_STATUSES,
    FCM_ERROR_CODES,
    classify_response,
    raise_for_single_send,
    translate_exception,
)
from notify.errors import PermanentChannelError, RateLimited, TransientChannelError

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def error_body(status: int, canonical: str, fcm_code: str | None = None, **extra) -> bytes:
    details = [{"@type": FCM_ERROR, "errorCode": fcm_code}] if fcm_code else []
    details += extra.get("details", [])
    return json.dumps(
        {
            "error": {
                "code": status,
                "message": extra.get("message", "x"),
                "status": canonical,
                "details": details,
            }
        }
    ).encode()


# The contract from the FCM documentation (and DESIGN.md), independent of the table in code.
@pytest.mark.parametrize(
    ("status", "canonical", "fcm_code", "outcome", "prune"),
    [
        (404, "NOT_FOUND", "UNREGISTERED", Outcome.PERMANENT, True),
        (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", Outcome.PERMANENT, True),
        (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", Outcome.PERMANENT, False),
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", Outcome.TRANSIENT, False),
        (503, "UNAVAILABLE", "UNAVAILABLE", Outcome.TRANSIENT, False),
        (500, "INTERNAL", "INTERNAL", Outcome.TRANSIENT, False),
        (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", Outcome.PERMANENT, False),
        (500, "UNKNOWN", "UNSPECIFIED_ERROR", Outcome.TRANSIENT, False),
        (502, "UNKNOWN", None, Outcome.TRANSIENT, False),
        (418, "", None, Outcome.PERMANENT, False),
    ],
)
def test_documented_error_codes(status, canonical, fcm_code, outcome, prune) -> None:
    result = classify_response(status, error_body(status, canonical, fcm_code), None)
    assert (result.outcome, result.prune) == (outcome, prune)


def test_invalid_argument_prunes_only_for_a_bad_token() -> None:
    violation = {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "message.token", "description": "bad"}],
    }
    bad_token = error_body(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", details=[violation])
    assert classify_response(400, bad_token, None).prune
    by_text = error_body(
        400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
        message="The registration token is not a valid FCM registration token",
    )  # fmt: skip
    assert classify_response(400, by_text, None).prune
    bad_payload = error_body(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", message="data key")
    assert not classify_response(400, bad_payload, None).prune


def test_quota_carries_retry_after_or_a_default() -> None:
    body = error_body(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
    assert classify_response(429, body, "17").retry_after_s == 17
    assert classify_response(429, body, None).retry_after_s == 60
    assert classify_response(429, b"not json", "nonsense").retry_after_s == 60


def test_every_code_firebase_admin_knows_is_mapped() -> None:
    assert set(messaging._MessagingService.FCM_ERROR_TYPES) <= set(FCM_ERROR_CODES)
    assert set(firebase_utils._ERROR_CODE_TO_EXCEPTION_TYPE) <= set(CANONICAL_STATUSES)
    for status in firebase_utils._HTTP_STATUS_TO_ERROR_CODE:
        result = classify_response(status, b"<html>gateway</html>", None)
        assert result.outcome in (Outcome.PERMANENT, Outcome.TRANSIENT)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


@pytest.mark.parametrize(
    "exc_type",
    sorted(
        _subclasses(aiohttp.ClientError)
        | _subclasses(google_exceptions.GoogleAuthError)
        | {aiohttp.ClientError, asyncio.TimeoutError, ConnectionResetError, OSError},
        key=lambda c: f"{c.__module__}.{c.__qualname__}",
    ),
)
def test_every_transport_and_credential_exception_is_transient(exc_type: type) -> None:
    exc = exc_type.__new__(exc_type)  # constructors differ; the class is what is mapped
    result = translate_exception(exc)
    assert result.outcome is Outcome.TRANSIENT
    assert result.error_code in {"TIMEOUT", "NETWORK", "CREDENTIALS"}


def test_single_sends_raise_the_project_errors() -> None:
    with pytest.raises(RateLimited):
        raise_for_single_send(
            classify_response(429, error_body(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "5")
        )
    with pytest.raises(TransientChannelError):
        raise_for_single_send(classify_response(503, error_body(503, "UNAVAILABLE"), None))
    with pytest.raises(PermanentChannelError):
        raise_for_single_send(classify_response(404, error_body(404, "NOT_FOUND"), None))
