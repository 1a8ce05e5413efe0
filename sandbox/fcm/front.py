"""The FCM sandbox's public listener: a lean HTTP/1.1 server for the one hot route.

FCM HTTP v1 takes one device per request, so a city broadcast is some 200,000
`POST /v1/projects/{project}/messages:send` to one URL. Through aiohttp's server each cost
the sandbox 60-130 µs of CPU (request and response objects, router, middleware), a third of
it the framework's: on the 2-core benchmark machine the fake, not the hub, set FCM's pace,
and the real limit (600,000 a minute) could never bind. Here that route is parsed by
httptools and answered by the same rules (`sandbox.fcm.send.answer_send`), logged and
faulted as the aiohttp middleware does (`sandbox.common`). Every other request (OAuth
tokens, topic management, control routes) is relayed to the aiohttp app on a private port,
so the sandbox keeps one URL.

What it does: keep-alive, pipelined requests answered in order, chunked request bodies
(httptools decodes them), `Expect: 100-continue`, limits on the head (431) and body (413),
an unreadable request (400); a refusal closes the connection. What it does not: upgrades,
HTTP/2, idle timeouts (it listens on 127.0.0.1 for tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote

import aiohttp
import httptools
from aiohttp import web

from sandbox.common import STATE_KEY, injected_fault, log_request
from sandbox.fcm.errors import Answer, fault_answer, google_answer
from sandbox.fcm.send import answer_send

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024  # bytes of a request line and headers (aiohttp allows 8 kB a line)
_HEAD_TOO_LARGE = (431, "The request line and headers are too large.")

_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
# Not relayed either way: they describe one hop, and each side sets its own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
        "expect",
    }
)


@dataclass(slots=True)
class _Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # names in lower case
    body: bytes
    keep_alive: bool
    path: str = field(init=False)
    query: str = field(init=False)
    project: str | None = field(init=False)  # a send's project; None for any other request

    def __post_init__(self) -> None:
        self.path, _, self.query = self.target.partition("?")
        match = _SEND_PATH.fullmatch(self.path) if self.method == "POST" else None
        self.project = unquote(match.group(1)) if match else None


def _head(status: int, headers: Mapping[str, str], length: int, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {length}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_JSON = {"Content-Type": "application/json; charset=UTF-8"}


def _recorded(answer: Answer, entry: dict[str, Any], request: _Request) -> bytes:
    entry["status"] = answer.status
    return _answer_bytes(answer, request.keep_alive)


def _answer_bytes(answer: Answer, keep_alive: bool) -> bytes:
    headers = _JSON if answer.retry_after is None else {**_JSON, "Retry-After": answer.retry_after}
    return _head(answer.status, headers, len(answer.body), keep_alive) + answer.body


class SendFront:
    """`await SendFront(app, max_body).start(app_url)` → the sandbox's public URL."""

    def __init__(self, app: web.Application, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self._app_url = ""
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self.connections: set[_Connection] = set()

    async def start(self, app_url: str, *, host: str = "127.0.0.1", port: int = 0) -> str:
        self._app_url = app_url
        # No timeout: an injected hang must reach the client as it would without the relay.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        bound = self._server.sockets[0].getsockname()[1]
        return f"http://{host}:{bound}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                connection.close()
            await self._server.wait_closed()
            self._server = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def answer_now(self, request: _Request) -> bytes | None:
        """A send answered without waiting (no faults to inject), else None."""
        project = request.project
        if project is None or self.app[STATE_KEY].faults.active():
            return None
        return self._send(request, project, self._log(request))

    async def answer_later(self, request: _Request) -> bytes:
        project = request.project
        if project is None:
            return await self._relay(request)
        entry = self._log(request)
        if (fault := await injected_fault(self.app[STATE_KEY], request.path, entry)) is not None:
            return _recorded(fault_answer(*fault), entry, request)
        return self._send(request, project, entry)

    def _send(self, request: _Request, project: str, entry: dict[str, Any]) -> bytes:
        authorization = request.headers.get("authorization")
        return _recorded(
            answer_send(self.app, project, authorization, request.body), entry, request
        )

    def _log(self, request: _Request) -> dict[str, Any]:
        state = self.app[STATE_KEY]
        return log_request(
            state, request.method, request.path, request.query, request.headers, request.body
        )

    async def _relay(self, request: _Request) -> bytes:
        assert self._session is not None
        if not request.target.startswith("/"):  # absolute-form or `*`: not for this server
            request.keep_alive = False
            return self.refused(400, "The request target must be a path.")
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self._app_url + request.target,
            headers=headers,
            data=request.body or None,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent"),
        ) as response:
            body = await response.read()
            passed = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
            return _head(response.status, passed, len(body), request.keep_alive) + body

    def refused(self, status: int, message: str) -> bytes:
        return _answer_bytes(google_answer(status, message), keep_alive=False)


class _Connection(asyncio.Protocol):
    """One client connection. Answers go out in request order: a send with nothing to wait
    for is answered at once; anything else (a relay, an injected fault) is answered by a
    task, and reading pauses until the task has caught up."""

    def __init__(self, front: SendFront) -> None:
        self._front = front
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[_Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._refusal: tuple[int, str] | None = None  # why a callback stopped the parser
        self._in_head = True  # reading a request line and headers
        self._head_bytes = 0  # bytes received while in them
        self._start_message()

    def _start_message(self) -> None:
        self._target = bytearray()
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._front.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "Protocol upgrades are not supported.")
        except httptools.HttpParserError:  # also what a callback raised, wrapped or not
            self._refuse(*(self._refusal or (400, "The request could not be parsed.")))
        else:  # httptools buffers a header until it ends: bound what it may hold
            if self._in_head and self._head_bytes > 2 * MAX_HEAD:
                self._refuse(*_HEAD_TOO_LARGE)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._front.connections.discard(self)
        if self._task is not None:
            self._task.cancel()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._start_message()

    def on_url(self, url: bytes) -> None:
        self._target += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            self._refusal = _HEAD_TOO_LARGE
            raise _Refused

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._front.max_body:
            self._refusal = (413, "The request body is too large.")
            raise _Refused
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0
        request = _Request(
            method=self._parser.get_method().decode("ascii"),
            target=self._target.decode("latin-1"),
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=self._parser.should_keep_alive(),
        )
        if self._task is None:
            try:
                answer = self._front.answer_now(request)
            except Exception:  # a sandbox bug: say so, as aiohttp would (500)
                log.exception("FCM sandbox: %s %s", request.method, request.path)
                self._refuse(500, "The sandbox failed on this request.")
                return
            if answer is not None:
                self._write(answer, request.keep_alive)
                return
        self._waiting.append(request)
        if self._task is None:
            assert self._transport is not None
            self._transport.pause_reading()
            self._task = asyncio.get_running_loop().create_task(self._answer_waiting())

    async def _answer_waiting(self) -> None:
        while self._waiting and not self._closing:
            request = self._waiting.popleft()
            try:
                answer = await self._front.answer_later(request)
            except (aiohttp.ClientError, OSError):
                self._refuse(502, "The sandbox's app did not answer the relayed request.")
                break
            except Exception:  # a sandbox bug: say so, as aiohttp would (500)
                log.exception("FCM sandbox: %s %s", request.method, request.path)
                self._refuse(500, "The sandbox failed on this request.")
                break
            self._write(answer, request.keep_alive)
        self._task = None
        if not self._closing and self._transport is not None:
            self._transport.resume_reading()

    def _write(self, answer: bytes, keep_alive: bool) -> None:
        if self._closing or self._transport is None:
            return
        self._transport.write(answer)
        if not keep_alive:
            self.close()

    def _refuse(self, status: int, message: str) -> None:
        self._write(self._front.refused(status, message), keep_alive=False)

    def close(self) -> None:
        self._closing = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class _Refused(httptools.HttpParserError):
    """Raised from a parser callback to stop the parser (`_Connection._refusal` says why)."""
