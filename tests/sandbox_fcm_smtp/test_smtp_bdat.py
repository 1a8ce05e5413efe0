"""The SMTP sandbox's RFC 3030 BDAT (CHUNKING), spoken byte by byte over a raw connection:
aiosmtpd has no BDAT, and aiosmtplib cannot send it."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from sandbox.smtp import SmtpSandbox

MESSAGE = (
    b"From: city@example.jp\r\nTo: taro@example.jp\r\nSubject: chunks\r\n\r\n"
    b".a line that starts with a dot stays as it is\r\n.\r\nQUIT\r\n"
)


@dataclass
class Conversation:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def reply(self) -> tuple[int, list[str]]:
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 5)
            assert line.endswith(b"\r\n"), line
            lines.append(line[4:].decode().strip())
            if line[3:4] == b" ":
                return int(line[:3]), lines

    async def send(self, payload: bytes, replies: int) -> list[int]:
        self.writer.write(payload)
        return [(await self.reply())[0] for _ in range(replies)]


@pytest.fixture
async def conversation(smtp: SmtpSandbox) -> AsyncIterator[Conversation]:
    reader, writer = await asyncio.open_connection(smtp.host, smtp.port)
    talk = Conversation(reader, writer)
    assert (await talk.reply())[0] == 220
    yield talk
    writer.close()


def envelope(to: str) -> bytes:
    return b"MAIL FROM:<city@example.jp>\r\nRCPT TO:<%b>\r\n" % to.encode()


def bdat(chunk: bytes, *, last: bool = True) -> bytes:
    return b"BDAT %d%b\r\n%b" % (len(chunk), b" LAST" if last else b"", chunk)


async def test_chunking_is_offered_and_a_message_in_two_chunks_is_kept_byte_for_byte(
    smtp: SmtpSandbox, conversation: Conversation
) -> None:
    writer = conversation.writer
    writer.write(b"EHLO hub.example.jp\r\n")
    code, offered = await conversation.reply()
    assert code == 250 and {"PIPELINING", "CHUNKING"} <= set(offered)
    head, tail = MESSAGE[:50], MESSAGE[50:]
    payload = envelope("taro@example.jp") + bdat(head, last=False) + bdat(tail)
    assert await conversation.send(payload, 4) == [250, 250, 250, 250]
    # The dot lines and the "QUIT" inside the chunk were message text, not commands.
    assert [m.raw for m in smtp.mailbox.messages] == [MESSAGE]
    assert smtp.state.counters.get("delivered", "taro@example.jp") == 1
    assert await conversation.send(envelope("hanako@example.jp") + bdat(MESSAGE), 3) == [250] * 3


async def test_a_refused_transaction_still_reads_its_chunk(
    smtp: SmtpSandbox, conversation: Conversation
) -> None:
    smtp.mailbox.hard_bounces.add("gone@example.jp")
    await conversation.send(b"EHLO hub.example.jp\r\n", 1)
    refused = envelope("gone@example.jp") + bdat(MESSAGE)
    assert await conversation.send(refused, 3) == [250, 550, 554]
    no_mail = bdat(b"RSET\r\nQUIT\r\n")
    assert await conversation.send(no_mail, 1) == [503]
    # Nothing of the chunks ran as a command; the session goes on.
    assert await conversation.send(envelope("taro@example.jp") + bdat(MESSAGE), 3) == [250] * 3
    assert [m.rcpt_tos for m in smtp.mailbox.messages] == [("taro@example.jp",)]


async def test_bdat_without_a_size_hangs_up(conversation: Conversation) -> None:
    await conversation.send(b"EHLO hub.example.jp\r\n", 1)
    assert await conversation.send(b"BDAT LAST\r\n", 1) == [501]
    assert await asyncio.wait_for(conversation.reader.read(), 5) == b""


async def test_a_server_without_chunking_does_not_offer_or_take_bdat(
    smtp: SmtpSandbox, conversation: Conversation
) -> None:
    smtp.state.limits["chunking"] = False
    conversation.writer.write(b"EHLO hub.example.jp\r\n")
    code, offered = await conversation.reply()
    assert code == 250 and "CHUNKING" not in offered
    assert await conversation.send(envelope("taro@example.jp") + b"BDAT 5 LAST\r\n", 3) == [
        250,
        250,
        500,
    ]


async def test_a_chunk_over_the_size_limit_is_read_and_dropped(
    smtp: SmtpSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.smtp.MAX_MESSAGE_BYTES", 1000)
    reader, writer = await asyncio.open_connection(smtp.host, smtp.port)  # after the patch
    talk = Conversation(reader, writer)
    try:
        assert (await talk.reply())[0] == 220
        await talk.send(b"EHLO hub.example.jp\r\n", 1)
        too_big = envelope("taro@example.jp") + bdat(b"x" * 300_000)
        assert await talk.send(too_big, 3) == [250, 250, 552]
        assert await talk.send(envelope("taro@example.jp") + bdat(MESSAGE), 3) == [250] * 3
        assert [m.raw for m in smtp.mailbox.messages] == [MESSAGE]
    finally:
        writer.close()


async def test_a_refused_chunk_is_dropped_as_it_arrives(
    smtp: SmtpSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 MB announced over a 1,000-octet limit: the server reads them in pieces and keeps
    # none (tracemalloc sees the server and this client, one process).
    monkeypatch.setattr("sandbox.smtp.MAX_MESSAGE_BYTES", 1000)
    reader, writer = await asyncio.open_connection(smtp.host, smtp.port)
    talk = Conversation(reader, writer)
    piece, pieces = b"x" * 65536, 320
    tracemalloc.start()
    try:
        assert (await talk.reply())[0] == 220
        await talk.send(b"EHLO hub.example.jp\r\n", 1)
        writer.write(envelope("taro@example.jp") + b"BDAT %d LAST\r\n" % (len(piece) * pieces))
        for _ in range(pieces):
            writer.write(piece)
            await writer.drain()
        assert [(await talk.reply())[0] for _ in range(3)] == [250, 250, 552]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        writer.close()
    assert peak < 4 * 1024 * 1024


async def test_pipelined_replies_go_out_when_the_input_waiting_is_only_part_of_a_command(
    conversation: Conversation,
) -> None:
    # Replies to pipelined commands are held while more input waits (RFC 2920 3.2); a
    # command cut in two by TCP must not keep the answers to the ones before it.
    codes = await conversation.send(b"EHLO hub.example.jp\r\nNOOP\r\nNOOP\r\nNO", 3)
    assert codes == [250, 250, 250]
    assert await conversation.send(b"OP\r\n", 1) == [250]


@pytest.mark.parametrize(
    ("pipeline", "codes"),
    [
        (b"NOOP\r\nQUIT\r\nNOOP\r\n", [250, 250, 221]),
        (b"NOOP\r\nBDAT\r\nNOOP\r\n", [250, 250, 501]),
        (b"NOOP\r\n" + b"BOGUS\r\n" * 5 + b"NOOP\r\n", [250, 250] + [500] * 4 + [502]),
    ],
    ids=["quit", "bdat-without-size", "bogus-commands"],
)
async def test_replies_held_for_a_pipeline_are_sent_before_a_hang_up(
    conversation: Conversation, pipeline: bytes, codes: list[int]
) -> None:
    assert await conversation.send(b"EHLO hub.example.jp\r\n" + pipeline, len(codes)) == codes
    assert await asyncio.wait_for(conversation.reader.read(), 5) == b""  # then the hang-up
