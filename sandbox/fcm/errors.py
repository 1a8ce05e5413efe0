"""Google's error shape, as FCM HTTP v1 returns it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from sandbox.fcm.schema import FieldViolation

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# HTTP status → canonical status; FCM's own errorCode is added where FCM sets one.
_CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FCM_CODE_FOR_STATUS = {500: "INTERNAL", 503: "UNAVAILABLE", 429: "QUOTA_EXCEEDED"}

INVALID_TOKEN_MESSAGE = "The registration token is not a valid FCM registration token"


@dataclass(frozen=True, slots=True)
class Answer:
    """An FCM answer before any web framework sees it: the send route's lean front
    (`sandbox.fcm.front`) writes it to the socket itself, aiohttp routes make it a Response."""

    status: int
    body: bytes
    retry_after: str | None = None

    def response(self) -> web.Response:
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        return web.Response(
            status=self.status,
            body=self.body,
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )


def ok_answer(document: object) -> Answer:
    return Answer(200, json.dumps(document).encode())


def google_answer(
    status: int,
    message: str,
    *,
    fcm_code: str | None = None,
    violations: Sequence[FieldViolation] = (),
    retry_after: str | None = None,
) -> Answer:
    details: list[dict[str, object]] = []
    if fcm_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": fcm_code})
    if violations:
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [
                    {"field": v.field, "description": v.description} for v in violations
                ],
            }
        )
    error: dict[str, object] = {
        "code": status,
        "message": message,
        "status": _CANONICAL.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return Answer(status, json.dumps({"error": error}).encode(), retry_after)


def google_error(
    status: int,
    message: str,
    *,
    fcm_code: str | None = None,
    violations: Sequence[FieldViolation] = (),
) -> web.Response:
    return google_answer(status, message, fcm_code=fcm_code, violations=violations).response()


def fault_answer(status: int, message: str) -> Answer:
    """Injected faults look like FCM's own 5xx (UNAVAILABLE / INTERNAL) answers."""
    return google_answer(status, message, fcm_code=_FCM_CODE_FOR_STATUS.get(status))


def fault_response(status: int, message: str) -> web.StreamResponse:
    return fault_answer(status, message).response()


def invalid_argument(message: str, violations: Sequence[FieldViolation] = ()) -> Answer:
    return google_answer(400, message, fcm_code="INVALID_ARGUMENT", violations=violations)
