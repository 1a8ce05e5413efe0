"""The FCM sandbox's lean front (`sandbox.fcm.front`), spoken to in raw HTTP/1.1 bytes.

The other FCM sandbox tests (aiohttp, google-auth, firebase-admin clients) already pass
through it; these pin down the wire: order, limits, hostile bytes and the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import httptools
import pytest

from sandbox.fcm import FcmSandbox
from sandbox.fcm.front import MAX_HEAD, SendFront
from sandbox.fcm.server import MAX_BODY

from .conftest import PROJECT, fetch_access_token

SEND = f"/v1/projects/{PROJECT}/messages:send"


@pytest.fixture
async def bearer(fcm: FcmSandbox, account) -> str:
    return await fetch_access_token(account.path)


def send_request(bearer: str, token: str, *, extra: str = "") -> bytes:
    body = json.dumps({"message": {"token": token, "notification": {"title": "t"}}}).encode()
    head = (
        f"POST {SEND} HTTP/1.1\r\nHost: fcm\r\nAuthorization: Bearer {bearer}\r\n"
        f"Content-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


Connection = tuple[asyncio.StreamWriter, "Answers"]


class Answers:
    """Reads HTTP answers off a raw connection with httptools."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[str, str], bytes]] = []
        self._headers: dict[str, str] = {}
        self._body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self._parser.get_status_code(), self._headers, self._body))
        self._headers, self._body = {}, b""

    async def read(self, n: int) -> list[tuple[int, dict[str, str], bytes]]:
        while len(self.done) < n:
            data = await asyncio.wait_for(self._reader.read(65536), 5)
            if not data:
                break
            self._parser.feed_data(data)
        return self.done

    async def closed(self) -> bool:
        return await asyncio.wait_for(self._reader.read(65536), 5) == b""


@pytest.fixture
async def connect(fcm: FcmSandbox) -> AsyncIterator[Callable[[], Awaitable[Connection]]]:
    """Opens raw connections to the front; closes them after the test."""
    writers: list[asyncio.StreamWriter] = []

    async def open_one() -> Connection:
        url = urlsplit(fcm.url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writers.append(writer)
        return writer, Answers(reader)

    yield open_one
    for writer in writers:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_pipelined_requests_are_answered_in_order_relay_included(
    fcm, connect, bearer
) -> None:
    writer, answers = await connect()
    relayed = b"GET /_sandbox/counters?name=delivered HTTP/1.1\r\nHost: fcm\r\n\r\n"
    writer.write(
        send_request(bearer, "first-token") + relayed + send_request(bearer, "second-token")
    )
    (first, counted, second) = await answers.read(3)
    assert first[0] == second[0] == 200
    assert json.loads(first[2])["name"] < json.loads(second[2])["name"]
    # The relayed request ran after the first send and before the second.
    by_recipient = json.loads(counted[2])["counters"]["delivered"]["by_recipient"]
    assert by_recipient == {"first-token": 1}
    assert counted[1]["content-type"].startswith("application/json")
    assert fcm.state.counters.get("delivered", "second-token") == 1


async def test_a_chunked_send_is_read_whole(fcm, connect, bearer) -> None:
    writer, answers = await connect()
    whole = send_request(bearer, "chunked-token")
    head, _, body = whole.partition(b"\r\n\r\n")
    head = head.replace(f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked")
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    writer.write(head + b"\r\n\r\n" + chunks + b"0\r\n\r\n")
    ((status, _, _),) = await answers.read(1)
    assert status == 200
    assert fcm.state.counters.get("delivered", "chunked-token") == 1


async def test_expect_continue_gets_its_interim_answer(fcm, connect, bearer) -> None:
    writer, answers = await connect()
    writer.write(send_request(bearer, "expecting-token", extra="Expect: 100-continue\r\n"))
    statuses = [status for status, _, _ in await answers.read(2)]
    assert statuses == [100, 200]


async def test_connection_close_is_honoured(fcm, connect, bearer) -> None:
    writer, answers = await connect()
    writer.write(send_request(bearer, "closing-token", extra="Connection: close\r\n"))
    ((status, headers, _),) = await answers.read(1)
    assert (status, headers["connection"]) == (200, "close")
    assert await answers.closed()


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"POST " + SEND.encode() + b" HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", 400),
        (b"OPTIONS * HTTP/1.1\r\nHost: fcm\r\n\r\n", 400),
        (b"GET http://elsewhere.example/ HTTP/1.1\r\nHost: fcm\r\n\r\n", 400),
        (
            b"POST "
            + SEND.encode()
            + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % (MAX_BODY + 1)
            + b"x" * (MAX_BODY + 1)
            + b"\r\n0\r\n\r\n",
            413,
        ),
        (b"GET /_sandbox/log HTTP/1.1\r\nX-Filler: " + b"y" * MAX_HEAD + b"\r\n\r\n", 431),
        (b"GET /" + b"z" * MAX_HEAD + b" HTTP/1.1\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Endless: " + b"y" * (3 * MAX_HEAD), 431),  # never ends
    ],
    ids=[
        "garbage",
        "negative-length",
        "upgrade",
        "asterisk",
        "absolute-form",
        "too-large",
        "long-header",
        "long-target",
        "endless-header",
    ],
)
async def test_hostile_bytes_get_an_answer_and_a_hang_up(
    fcm, connect, raw: bytes, status: int
) -> None:
    writer, answers = await connect()
    writer.write(raw)
    ((answered, _, body),) = await answers.read(1)
    assert answered == status
    assert json.loads(body)["error"]["code"] == status
    assert await answers.closed()
    assert fcm.state.counters.total("delivered") == 0


async def test_faults_delay_sends_without_reordering_them(
    fcm, connect, fcm_control, bearer
) -> None:
    await fcm_control.faults(error_share=0.5, slow_ms=20, seed=7, paths=["/v1/"])
    writer, answers = await connect()
    writer.write(b"".join(send_request(bearer, f"faulted-{i:02d}") for i in range(10)))
    done = await answers.read(10)
    statuses = [status for status, _, _ in done]
    assert set(statuses) == {200, 503}  # seed 7: some of each
    delivered = [f"faulted-{i:02d}" for i, s in enumerate(statuses) if s == 200]
    assert (
        sorted(fcm.state.counters.snapshot("delivered")["delivered"]["by_recipient"]) == delivered
    )
    logged = await fcm_control.log(path="/v1/")
    assert [entry.get("fault") == "error" for entry in logged] == [s == 503 for s in statuses]
    assert [entry["status"] for entry in logged] == statuses


async def test_a_quota_answer_carries_retry_after(fcm, connect, fcm_control, bearer) -> None:
    await fcm_control.limits(project_per_min=1)
    writer, answers = await connect()
    writer.write(send_request(bearer, "quota-a-token") + send_request(bearer, "quota-b-token"))
    (ok, refused) = await answers.read(2)
    assert (ok[0], refused[0]) == (200, 429)
    assert 1 <= int(refused[1]["retry-after"]) <= 60


async def test_the_relay_passes_status_headers_and_body(fcm, connect, session) -> None:
    async with session.post(f"{fcm.url}/token", data={"grant_type": "password"}) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"
    async with session.get(f"{fcm.url}/no/such/route") as response:
        assert response.status == 404
    # The aiohttp app itself still answers sends, by the same rules.
    async with session.post(f"{fcm.app_url}{SEND}", json={"message": {}}) as response:
        assert response.status == 401


async def test_an_unreachable_app_is_a_502_and_a_hang_up(fcm) -> None:
    front = SendFront(fcm.app, max_body=MAX_BODY)
    url = urlsplit(await front.start("http://127.0.0.1:1"))  # nothing listens on port 1
    try:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(b"GET /_sandbox/counters HTTP/1.1\r\nHost: fcm\r\n\r\n")
        answers = Answers(reader)
        ((status, _, body),) = await answers.read(1)
        assert (status, json.loads(body)["error"]["code"]) == (502, 502)
        assert await answers.closed()
        writer.close()
    finally:
        await front.stop()
