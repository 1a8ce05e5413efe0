"""line-bot-sdk v3 plumbing shared by the LINE channel: clients, calls, error translation.

Every SDK call goes through `LineSdk._call`, so whatever the SDK, pydantic or aiohttp raises
leaves as one of the project's `ChannelError`s (`translate_error`).

The SDK's aiohttp session is built with `trust_env=True`: it reads proxy variables and
~/.netrc from the environment, in two thread hops, on every request. The hub's rule is that
only `notify/settings.py` reads the environment, and those hops cost more CPU than the
request itself, so the adapter hands the SDK a plain session instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import pydantic
import pydantic.v1
from linebot.v3 import insight as line_insight
from linebot.v3 import messaging as line

from notify.errors import (
    AlreadyAccepted,
    ChannelError,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)

API_EXCEPTIONS = (line.ApiException, line_insight.ApiException)
_CLIENT_SIDE = (line.OpenApiException, line_insight.OpenApiException)
_VALIDATION = (pydantic.v1.ValidationError, pydantic.ValidationError)
_TRANSLATED = (
    *API_EXCEPTIONS,
    *_CLIENT_SIDE,
    *_VALIDATION,
    TimeoutError,
    aiohttp.ClientError,
    ValueError,
)


def error_body(exc: Any) -> dict[str, Any]:
    """LINE's JSON error body (`message`, `details`) of an ApiException, or {}."""
    raw = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {"message": str(raw)[:200]}
    return parsed if isinstance(parsed, dict) else {}


def translate_error(exc: BaseException) -> ChannelError:
    """Every error line-bot-sdk, pydantic or aiohttp can raise, in the project's tree."""
    if isinstance(exc, API_EXCEPTIONS):  # NotFound/Unauthorized/Forbidden/ServiceException too
        status = int(exc.status or 0)
        body = error_body(exc)
        message = f"LINE {status}: {body.get('message') or exc.reason or 'error'}"
        details = body.get("details")
        if isinstance(details, list) and details:  # which property, as LINE names it
            message += " (" + "; ".join(_describe(d) for d in details[:5]) + ")"
        headers = exc.headers or {}
        if status == 409:
            accepted = headers.get("x-line-accepted-request-id")
            return AlreadyAccepted(message, accepted_request_id=accepted)
        if status == 429:
            code = "monthly_limit" if "monthly limit" in message else "rate_limited"
            return RateLimited(message, provider_code=code, retry_after_s=_retry_after(headers))
        if status >= 500:
            return TransientChannelError(message, provider_code=f"http_{status}")
        return PermanentChannelError(
            message, provider_code=f"http_{status}" if status else "client"
        )
    if isinstance(exc, (*_CLIENT_SIDE, *_VALIDATION)):
        return PermanentChannelError(
            f"LINE request refused by the SDK: {exc}", provider_code="client"
        )
    if isinstance(exc, TimeoutError):  # asyncio's too; aiohttp's ServerTimeoutError is one
        return TransientChannelError("LINE did not answer in time", provider_code="timeout")
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentChannelError(f"bad LINE URL: {exc}", provider_code="config")
    if isinstance(exc, aiohttp.ClientError | ValueError):
        return TransientChannelError(f"LINE connection failed: {exc!r}", provider_code="connection")
    return TransientChannelError(f"unexpected LINE failure: {exc!r}", provider_code="unknown")


def _describe(detail: Any) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    return f"{detail.get('property', '?')}: {detail.get('message', '')}"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None  # LINE never sends one: the caller's own backoff decides


def sdk_model(model: Any, data: Mapping[str, Any]) -> Any:
    """An SDK request model from its JSON form; a refusal is our bug, hence permanent."""
    try:
        return model.from_dict(dict(data))
    except (ValueError, TypeError, *_CLIENT_SIDE) as exc:
        raise PermanentChannelError(f"LINE payload refused: {exc}", provider_code="client") from exc


class JsonReadyModel:
    """Mixin for an SDK request model whose `to_dict()` is already plain JSON, so the client
    need not walk it value by value (a multicast carries 500 ids)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


def _fast_client(module: Any) -> Any:
    """The package's AsyncApiClient, taking `JsonReadyModel` bodies as they are."""

    class Client(module.AsyncApiClient):
        def sanitize_for_serialization(self, obj: Any) -> Any:
            if isinstance(obj, JsonReadyModel):
                return obj.to_dict()
            return super().sanitize_for_serialization(obj)

    return Client


_CLIENT_CLASSES = {
    line.__name__: _fast_client(line),
    line_insight.__name__: _fast_client(line_insight),
}


class LineSdk:
    """Owns the SDK's async clients: messaging on the API and the data host, insight."""

    def __init__(
        self,
        *,
        api_url: str,
        data_url: str,
        channel_access_token: str,
        timeout_s: float = 10.0,
        max_connections: int = 16,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._data_url = data_url.rstrip("/")
        self._token = channel_access_token
        self.timeout_s = timeout_s
        self._max_connections = max_connections
        self._clients: dict[tuple[str, str], Any] = {}  # (SDK package, host) -> ApiClient
        self._building = asyncio.Lock()  # concurrent first calls must not each build a client

    async def _client(self, module: Any, host: str) -> Any:
        """One SDK ApiClient per package and host, made on first use inside the running loop
        (the SDK opens its aiohttp session in the constructor)."""
        key = (module.__name__, host)
        if key in self._clients:
            return self._clients[key]
        async with self._building:
            if key not in self._clients:
                config = module.Configuration(host=host, access_token=self._token)
                client = _CLIENT_CLASSES[module.__name__](config)
                rest = client.rest_client
                sdk_session, rest.pool_manager = (
                    rest.pool_manager,
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=self._max_connections),
                        trust_env=False,
                    ),
                )
                await sdk_session.close()
                self._clients[key] = client
        return self._clients[key]

    async def messaging(self) -> line.AsyncMessagingApi:
        return line.AsyncMessagingApi(await self._client(line, self._api_url))

    async def blob(self) -> line.AsyncMessagingApiBlob:
        return line.AsyncMessagingApiBlob(await self._client(line, self._data_url))

    async def insight(self) -> line_insight.AsyncInsight:
        return line_insight.AsyncInsight(await self._client(line_insight, self._api_url))

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call; anything it raises (even while checking its arguments) leaves
        as a `ChannelError`."""
        try:
            return await method(*args, _request_timeout=self.timeout_s, **kwargs)
        except _TRANSLATED as exc:
            raise translate_error(exc) from exc
