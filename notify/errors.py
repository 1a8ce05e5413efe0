"""The project's one exception tree.

Everything the hub raises on purpose derives from `HubError`. The web layer maps each
class to one HTTP status and the JSON error shape; channel adapters translate every
provider/SDK error into `ChannelError` subclasses at their boundary.
"""

from __future__ import annotations

from collections.abc import Mapping


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, str] = dict(fields or {})


class InvalidInput(HubError):
    """Bad input from a client: names the field(s) and the reason."""

    status = 422
    code = "invalid_input"


class Unauthenticated(HubError):
    status = 401
    code = "unauthenticated"


class Forbidden(HubError):
    status = 403
    code = "forbidden"


class NotFound(HubError):
    status = 404
    code = "not_found"


BROADCAST_NOT_FOUND = "配信が見つかりません / broadcast not found"


class Conflict(HubError):
    """A state transition or uniqueness rule forbids the request."""

    status = 409
    code = "conflict"


class PayloadTooLarge(HubError):
    status = 413
    code = "payload_too_large"


class ConfigError(HubError):
    """The city configuration or settings are wrong (raised at start-up)."""

    code = "config_error"


class TemplateError(InvalidInput):
    """A staff-written template failed to compile or render."""

    code = "template_error"


# --- delivery / providers -------------------------------------------------------------


class ChannelError(HubError):
    """A provider call failed; raised only by channel adapters."""

    status = 502
    code = "channel_error"

    def __init__(self, message: str, *, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.provider_code = provider_code


class TransientChannelError(ChannelError):
    """Worth retrying later (5xx, timeout, connection reset)."""

    code = "channel_transient"


class RateLimited(TransientChannelError):
    """The provider answered 429 / quota exceeded: back off before retrying."""

    code = "channel_rate_limited"

    def __init__(
        self, message: str, *, provider_code: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, provider_code=provider_code)
        self.retry_after_s = retry_after_s


class PermanentChannelError(ChannelError):
    """Retrying cannot help (4xx other than 429): bad request, bad credentials, bad recipient."""

    code = "channel_permanent"


class AlreadyAccepted(ChannelError):
    """LINE answered 409 to a retry key: the request was accepted before (not a failure)."""

    code = "channel_already_accepted"

    def __init__(self, message: str, *, accepted_request_id: str | None) -> None:
        super().__init__(message)
        self.accepted_request_id = accepted_request_id
