"""The FCM send path's HTTP/1.1 client against real servers on 127.0.0.1 that answer the way
a server may: keep-alive or not, chunked, hanging, hanging up, speaking garbage, over TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trustme
import uvloop

from channels.fcm_errors import translate_exception
from channels.http1 import Http1Client, ProtocolError

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


@dataclass
class Server:
    """Reads each request whole, then lets `answer` write what it likes."""

    answer: Answer
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    origin: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.answer(reader, writer, request)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer, ssl_context: ssl.SSLContext | None = None) -> Server:
        server = Server(answer)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(listening)
        port = listening.sockets[0].getsockname()[1]
        server.origin = f"{'https://localhost' if ssl_context else 'http://127.0.0.1'}:{port}"
        return server

    yield start
    for listening in servers:
        listening.close()


def ok(body: bytes = b'{"name":"m"}', extra: bytes = b"") -> Answer:
    async def answer(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _q: bytes) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)
        )
        await writer.drain()

    return answer


async def post(client: Http1Client, body: bytes = b'{"a":1}') -> tuple[int, bytes]:
    head = client.request_head("POST", "/v1/send", {"Content-Type": "application/json"})
    response = await client.send(head, body)
    return response.status, response.body


async def test_requests_share_one_connection_and_cross_the_wire_as_written(serve) -> None:
    server = await serve(ok())
    client = Http1Client(server.origin)
    try:
        answers = [await post(client, b'{"n":%d}' % i) for i in range(5)]
    finally:
        client.close()
    assert answers == [(200, b'{"name":"m"}')] * 5
    assert server.connections == 1
    port = server.origin.rsplit(":", 1)[1]
    assert server.requests[3] == (
        b"POST /v1/send HTTP/1.1\r\nHost: 127.0.0.1:%b\r\nContent-Type: application/json\r\n"
        b'Content-Length: 7\r\n\r\n{"n":3}' % port.encode()
    )


async def test_a_chunked_answer_in_pieces_is_read_whole(serve) -> None:
    async def chunked(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _q: bytes) -> None:
        writer.write(b"HTTP/1.1 429 Too Many\r\nRetry-After: 17\r\nTransfer-Encoding: chunked\r\n")
        writer.write(b'\r\n5\r\n{"err')
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b'\r\n4\r\nor"}\r\n0\r\n\r\n')
        await writer.drain()

    server = await serve(chunked)
    client = Http1Client(server.origin)
    try:
        head = client.request_head("POST", "/", {})
        response = await client.send(head, b"{}")
        again = await client.send(head, b"{}")
    finally:
        client.close()
    assert (response.status, response.body, response.retry_after) == (429, b'{"error"}', "17")
    assert again == response and server.connections == 1


async def test_a_connection_the_server_closes_is_never_reused(serve) -> None:
    async def close_after(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, q: bytes) -> None:
        announce = b"Connection: close\r\n" if len(server.requests) == 1 else b""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n%b\r\nok" % announce)
        await writer.drain()
        writer.close()  # the second time without saying so

    server = await serve(close_after)
    client = Http1Client(server.origin)
    try:
        first = await post(client)
        second = await post(client)
        await asyncio.sleep(0.05)  # the hang-up reaches the client while it sits idle
        third = await post(client)
    finally:
        client.close()
    assert [first, second, third] == [(200, b"ok")] * 3
    assert server.connections == 3


@pytest.mark.parametrize(
    "reply",
    [b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."],
    ids=["garbage", "hang-up-mid-answer"],
)
async def test_an_unreadable_or_cut_answer_is_a_connection_error(serve, reply: bytes) -> None:
    async def bad(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _q: bytes) -> None:
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await serve(bad)
    client = Http1Client(server.origin)
    try:
        with pytest.raises(ProtocolError) as raised:
            await post(client)
        assert translate_exception(raised.value).error_code == "NETWORK"  # retried later
        server.answer = ok()
        assert await post(client) == (200, b'{"name":"m"}')  # on a new connection
    finally:
        client.close()
    assert server.connections == 2


async def test_a_hung_request_times_out_and_its_connection_is_dropped(serve) -> None:
    hung_up = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, _w: asyncio.StreamWriter, _q: bytes) -> None:
        await reader.read()  # until the client gives up on this connection
        hung_up.set()

    server = await serve(hang)
    client = Http1Client(server.origin, timeout_s=0.2)
    try:
        with pytest.raises(TimeoutError) as raised:
            await post(client)
        await asyncio.wait_for(hung_up.wait(), 2)
    finally:
        client.close()
    assert translate_exception(raised.value).error_code == "TIMEOUT"


async def test_no_more_idle_connections_are_kept_than_asked(serve) -> None:
    server = await serve(ok())
    client = Http1Client(server.origin, keep=2)
    try:
        await asyncio.gather(*(post(client) for _ in range(5)))
        assert server.connections == 5
        await asyncio.gather(*(post(client) for _ in range(5)))
    finally:
        client.close()
    assert server.connections == 8  # two kept from the first round, three opened again


async def test_https_checks_the_certificate(serve) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    server = await serve(ok(), ssl_context=server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    client = Http1Client(server.origin, ssl_context=trusting)
    stranger = Http1Client(server.origin)  # the system's CAs do not know this one
    try:
        assert await post(client) == (200, b'{"name":"m"}')
        with pytest.raises(ssl.SSLCertVerificationError) as refused:
            await post(stranger)
    finally:
        client.close()
        stranger.close()
    assert translate_exception(refused.value).error_code == "NETWORK"


@pytest.mark.parametrize("origin", ["ftp://fcm.example", "fcm.googleapis.com", "https://"])
def test_only_an_http_origin_is_accepted(origin: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        Http1Client(origin)


def test_on_uvloop_as_in_the_worker() -> None:
    """The worker runs uvloop (`worker.use_uvloop`), whose transports are its own classes."""

    async def run() -> tuple[int, bytes]:
        server = Server(ok())
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        client = Http1Client(f"http://127.0.0.1:{port}")
        try:
            return await post(client)
        finally:
            client.close()
            listening.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(run()) == (200, b'{"name":"m"}')
