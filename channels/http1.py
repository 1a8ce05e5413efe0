"""A small HTTP/1.1 keep-alive client for one origin: FCM's one-request-per-device path.

FCM HTTP v1 takes one device per request, so a city broadcast is hundreds of thousands of
POSTs to one URL. aiohttp's client spends about 80 µs of CPU on each (request and response
objects, header multidicts, timers, cookie and tracing hooks) whatever its settings, and on a
2-core machine that was a sixth of the worker's CPU (`python -m bench channels_fcm`). Here a
request is one pre-built header block and one `transport.write`, and the answer is parsed by
httptools (MagicStack's C parser, the one uvicorn uses). aiohttp stays for everything else.

What it does: keep-alive connections reused LIFO, TLS for https, Content-Length and chunked
answers (httptools decodes them), a deadline for a new connection's connect and one for each
answer (a timer on the connection, not `asyncio.timeout`: see `_Connection`), and
any failure closes that connection. What it does not: redirects, proxies, cookies, HTTP/2.
Errors are `OSError`s (`ConnectionError`, `TimeoutError`), as for a socket.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools


class ProtocolError(ConnectionError):
    """The server's answer was not HTTP/1.1 we can read, or it hung up mid-answer."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    retry_after: str | None


class _Connection(asyncio.Protocol):
    """One connection, one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        # Made inside the loop (by `create_connection`): asking for it per request costs a
        # getpid() system call each time (CPython's fork check), as does `asyncio.timeout`.
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._body: list[bytes] = []
        self._retry_after: str | None = None
        self.open = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked: a server talking out of turn
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"unreadable HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(ProtocolError("the server closed the connection before answering"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        self._stop_deadline()
        keep_alive = self._parser.should_keep_alive()
        response = Response(self._parser.get_status_code(), b"".join(self._body), self._retry_after)
        if not keep_alive:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # the client's side
    def send(self, request: bytes, timeout_s: float) -> asyncio.Future[Response]:
        """Write the request; the answer comes within `timeout_s` or the connection fails
        with `TimeoutError` (one timer, cancelled by the answer)."""
        assert self._transport is not None and self._waiter is None
        self._body, self._retry_after = [], None
        self._waiter = self._loop.create_future()
        self._deadline = self._loop.call_later(timeout_s, self._timed_out)
        self._transport.write(request)
        return self._waiter

    def _timed_out(self) -> None:
        self._deadline = None
        self._fail(TimeoutError("no answer in time"))

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.close()  # and its deadline
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.open = False
        self._stop_deadline()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class Http1Client:
    """POSTs to one origin over at most `keep` idle keep-alive connections.

    The caller bounds how many requests run at once (FCM's `SendPool`); each running request
    holds one connection, so there are never more connections than that.
    """

    def __init__(
        self,
        origin: str,
        *,
        keep: int = 100,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":  # the system's CAs unless a test brings its own
            self._ssl = ssl_context or ssl.create_default_context()
        default_port = self._port == (443 if self._ssl else 80)
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._keep, self._timeout = keep, timeout_s
        self._idle: deque[_Connection] = deque()

    def request_head(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        """The request line and headers without Content-Length, built once per headers set."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def send(self, head: bytes, body: bytes) -> Response:
        """One request (`head` from `request_head`) and its answer, each step within the
        deadline (a new connection's connect, then the answer)."""
        request = b"%b%d\r\n\r\n%b" % (head, len(body), body)
        connection = self._idle_connection()
        if connection is None:
            async with asyncio.timeout(self._timeout):
                connection = await self._connect()
        try:
            response = await connection.send(request, self._timeout)
        except BaseException:
            connection.close()  # its answer may still come: never reuse it
            raise
        if connection.open and len(self._idle) < self._keep:
            self._idle.append(connection)
        return response

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.open:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._host if self._ssl else None,
        )
        return connection

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
