"""LINE's error shape: `{"message": ..., "details": [{"message": ..., "property": ...}]}`."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

INVALID_TOKEN = (
    "Authentication failed due to the following reason: invalid token. "
    "Confirm that the access token in the authorization header is valid."
)
MISSING_TOKEN = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
RATE_LIMITED = "The API rate limit has been exceeded. Try again later."
QUOTA_EXCEEDED = "You have reached your monthly limit."
RETRY_KEY_ACCEPTED = "The retry key is already accepted"
NOT_FOUND = "Not found"


class LineApiError(Exception):
    """Raised by the simulator's handlers; the middleware turns it into LINE's JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> web.Response:
        body: dict[str, object] = {"message": self.message}
        if self.details:
            body["details"] = self.details
        body.update(self.extra)
        return web.json_response(body, status=self.status, headers=self.headers)


def body_errors(details: list[dict[str, str]]) -> LineApiError:
    return LineApiError(400, f"The request body has {len(details)} error(s)", details)


def invalid(prop: str, message: str) -> LineApiError:
    return body_errors([{"message": message, "property": prop}])
