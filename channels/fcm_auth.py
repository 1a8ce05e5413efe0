"""OAuth access tokens for FCM from a service-account file, cached and refreshed off the loop.

google-auth does the real work (JWT assertion signed with the account's key, POSTed to the
file's `token_uri`). We call `refresh()` only, never `before_request()`, so google-auth does not
start its background Regional Access Boundary look-up of iamcredentials.googleapis.com (a host
no setting moves): FCM does not need it, and offline it would only fail in a thread.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from notify.errors import ConfigError, PermanentChannelError, TransientChannelError

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_REFRESH_MARGIN_S = 300  # refresh five minutes before Google's one-hour expiry


class GoogleTokenSource:
    """One cached access token (about an hour) shared by every send of this process."""

    def __init__(self, credentials_file: Path, *, http_timeout_s: float = 10.0) -> None:
        self._file = credentials_file
        self._timeout = http_timeout_s
        self._credentials: Any = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @property
    def project_id(self) -> str | None:
        return getattr(self._credentials, "project_id", None)

    def fresh_token(self) -> str | None:
        """The cached token while it is valid (no await: this is on every send's path)."""
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token
        return None

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                await self._refresh()
        assert self._token is not None
        return self._token

    def invalidate(self, rejected: str) -> None:
        """FCM said 401 for this token: fetch a new one on the next call (once per token)."""
        if self._token == rejected:
            self._token = None

    async def _refresh(self) -> None:
        try:
            self._token, lifetime = await asyncio.to_thread(self._refresh_blocking)
        except google_exceptions.TransportError as exc:
            raise TransientChannelError(f"OAuth token endpoint unreachable: {exc}") from exc
        except google_exceptions.RefreshError as exc:
            if exc.retryable:  # google-auth marks 5xx / 429 answers as retryable
                raise TransientChannelError(f"OAuth token endpoint failed: {exc}") from exc
            raise PermanentChannelError(f"FCM credentials refused: {exc}") from exc
        except (google_exceptions.GoogleAuthError, ValueError, OSError) as exc:
            raise PermanentChannelError(f"FCM credentials refused: {exc}") from exc
        self._expires_at = time.monotonic() + max(lifetime - _REFRESH_MARGIN_S, lifetime / 2)
        self.refreshes += 1

    def _refresh_blocking(self) -> tuple[str, float]:
        if self._credentials is None:
            self._credentials = load_credentials(self._file)
        request = Request()
        self._credentials.refresh(_TimeoutRequest(request, self._timeout))
        expiry = self._credentials.expiry  # a naive datetime in UTC
        lifetime = 3600.0
        if expiry is not None:
            lifetime = expiry.replace(tzinfo=UTC).timestamp() - time.time()
        return str(self._credentials.token), max(lifetime, 1.0)


def load_credentials(path: Path) -> Any:
    try:
        return service_account.Credentials.from_service_account_file(str(path), scopes=[FCM_SCOPE])
    except (OSError, ValueError, google_exceptions.GoogleAuthError) as exc:
        raise ConfigError(f"cannot read the FCM service-account file {path}: {exc}") from exc


class _TimeoutRequest:
    """google-auth's requests transport with a timeout (it has none by default)."""

    def __init__(self, inner: Request, timeout: float) -> None:
        self._inner, self._timeout = inner, timeout

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return self._inner(url, method=method, **kwargs)
