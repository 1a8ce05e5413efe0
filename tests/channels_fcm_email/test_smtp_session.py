"""The per-message SMTP conversation against a strict scripted server on 127.0.0.1: what each
write carries, with PIPELINING and without, and what happens when the server refuses, lets
DATA go ahead anyway, or hangs up."""

from __future__ import annotations

import asyncio
import itertools
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trustme
from aiosmtpd.smtp import SMTP

from channels.base import EmailMessage, Outcome, Recipient, SendContext
from channels.email import EmailChannel
from channels.smtp_session import CHUNK_WINDOW, _path, wire_data

MESSAGE = EmailMessage(subject="お知らせ", text="本文\n.先頭の点\n")
CONTEXT = SendContext(broadcast_id=1)


@dataclass
class Script:
    pipelining: bool = True
    chunking: bool = False  # offer RFC 3030 BDAT
    strict_after_failed_chunk: bool = False  # a refused BDAT LAST leaves the transaction open
    data_despite_refusal: bool = False  # answer DATA with 354 even with no valid recipient
    hang_up_on_data: int = 0  # close this many connections when DATA arrives
    hang_up_on_end_of_data: int = 0  # close this many connections at a message's final dot
    connections: int = 0
    writes: list[bytes] = field(default_factory=list)
    out_of_turn: int = 0  # writes carrying a command after another one while not offered
    messages: list[bytes] = field(default_factory=list)


class ScriptedSmtp(asyncio.Protocol):
    """Answers line by line; multi-line replies to EHLO and MAIL."""

    def __init__(self, script: Script) -> None:
        self.script, self.buffer, self.data, self.valid = script, b"", None, 0
        self.refuse_content = False
        self.chunk_left: int | None = None  # octets of a BDAT chunk still to come
        self.in_transaction = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.script.connections += 1
        self.reply(b"220 scripted ESMTP")

    def reply(self, line: bytes) -> None:
        self.transport.write(line + b"\r\n")  # type: ignore[attr-defined]

    def data_received(self, chunk: bytes) -> None:
        self.script.writes.append(chunk)
        if self.data is None and not self.script.pipelining and chunk.count(b"\r\n") > 1:
            self.script.out_of_turn += 1
        self.buffer += chunk
        while b"\r\n" in self.buffer or (self.chunk_left is not None and self.buffer):
            if self.chunk_left is not None:
                if len(self.buffer) < self.chunk_left:
                    return
                body, self.buffer = self.buffer[: self.chunk_left], self.buffer[self.chunk_left :]
                self.chunk_left = None
                self.end_of_chunk(body)
                continue
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if self.data is not None:
                self.in_data(line)
            else:
                self.command(line)

    def in_data(self, line: bytes) -> None:
        assert self.data is not None
        if line != b".":
            self.data.append(line)
            return
        if self.script.hang_up_on_end_of_data:
            self.script.hang_up_on_end_of_data -= 1
            self.transport.close()
            self.buffer = b""
        elif self.refuse_content:
            self.reply(b"554 5.6.0 content refused")
        elif self.valid:
            self.script.messages.append(b"\r\n".join(self.data))
            self.reply(b"250 2.0.0 queued")
        else:
            self.reply(b"554 5.5.1 no valid recipients")
        self.data = None

    def end_of_chunk(self, body: bytes) -> None:
        """A `BDAT n LAST` chunk has arrived whole."""
        if self.script.hang_up_on_end_of_data:
            self.script.hang_up_on_end_of_data -= 1
            self.transport.close()
            self.buffer = b""
            return
        if self.refuse_content:
            self.reply(b"554 5.6.0 content refused")
        elif self.valid:
            self.script.messages.append(body)
            self.reply(b"250 2.0.0 queued")
        else:
            self.reply(b"554 5.5.1 no valid recipients")
            if self.script.strict_after_failed_chunk:
                return  # still in the transaction: the next MAIL is refused (nested)
        self.in_transaction = False

    def command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            offer = b"250-PIPELINING\r\n" if self.script.pipelining else b""
            offer += b"250-CHUNKING\r\n" if self.script.chunking else b""
            self.reply(b"250-scripted\r\n%b250-SMTPUTF8\r\n250 SIZE 1000000" % offer)
        elif verb == b"MAIL" and self.in_transaction:
            self.reply(b"503 5.5.1 nested MAIL command")
        elif verb == b"MAIL":
            self.valid, self.refuse_content = 0, False
            self.in_transaction = self.script.chunking
            self.reply(b"250-sender\r\n250 2.1.0 ok")
        elif verb == b"BDAT" and self.script.chunking:
            size, _, last = line[5:].partition(b" ")
            assert last == b"LAST", line  # the hub sends each message as one chunk
            self.chunk_left = int(size)
        elif verb == b"RCPT":
            refused = line.startswith(b"RCPT TO:<refused")
            self.refuse_content |= line.startswith(b"RCPT TO:<spam-trap")
            self.valid += not refused
            self.reply(b"550 5.1.1 no such user" if refused else b"250 2.1.5 ok")
        elif verb == b"DATA":
            if self.script.hang_up_on_data:
                self.script.hang_up_on_data -= 1
                self.transport.close()
            elif self.valid or self.script.data_despite_refusal:
                self.data = []
                self.reply(b"354 go ahead")
            else:
                self.reply(b"503 5.5.1 no valid recipients")
        elif verb == b"RSET":
            self.valid, self.in_transaction = 0, False
            self.reply(b"250 ok")
        elif verb == b"QUIT":
            self.reply(b"221 bye")
            self.transport.close()
        else:
            self.reply(b"500 unknown")


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Script, EmailChannel]]:
    script = Script()
    server = await asyncio.get_running_loop().create_server(
        lambda: ScriptedSmtp(script), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    channel = EmailChannel(
        host="127.0.0.1", port=port, mail_from="info@city.example.jp", timeout_s=2
    )
    yield script, channel
    server.close()


def residents(*addresses: str) -> list[Recipient]:
    return [Recipient(endpoint_id=i, address=a) for i, a in enumerate(addresses, start=1)]


async def test_with_pipelining_a_message_is_one_write_and_one_round_trip(scripted) -> None:
    # The first envelope alone; then each message's data with the next message's envelope
    # (RFC 2920 3.1); the last message's data alone.
    script, channel = scripted
    to = residents("a@example.jp", "b@example.jp", "c@example.jp")
    results = await channel.send_batch(to, MESSAGE, CONTEXT)
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    writes = [w for w in script.writes if not w.startswith((b"EHLO", b"QUIT"))]
    assert len(writes) == 4
    assert writes[0].startswith(b"MAIL FROM:<info@city.example.jp> SIZE=")
    assert writes[0].endswith(b"\r\nRCPT TO:<a@example.jp>\r\nDATA\r\n")
    assert writes[0].count(b"\r\n") == 3
    for data, envelope in zip(script.messages, writes[1:3], strict=False):
        assert envelope.startswith(wire_data(data) + b"MAIL FROM:<info@city.example.jp> SIZE=")
    assert writes[1].endswith(b"\r\nRCPT TO:<b@example.jp>\r\nDATA\r\n")
    assert writes[2].endswith(b"\r\nRCPT TO:<c@example.jp>\r\nDATA\r\n")
    assert writes[3] == wire_data(script.messages[2])
    assert b"\r\n..\xe5\x85\x88" not in script.messages[0]  # base64 body: no dot to double
    assert script.connections == 1 and len(script.messages) == 3


async def test_refused_content_does_not_stop_the_next_message(scripted) -> None:
    # The next envelope left with the refused data; the server answers both in turn.
    script, channel = scripted
    to = residents("spam-trap@example.jp", "b@example.jp")
    results = await channel.send_batch(to, MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code) for r in results] == [
        (Outcome.PERMANENT, "SMTP_554"),
        (Outcome.SENT, None),
    ]
    assert script.connections == 1 and len(script.messages) == 1


async def test_a_hang_up_at_the_final_dot_costs_that_message_only(scripted) -> None:
    # The connection closes while a's data and b's envelope are on their way: a's fate is
    # unknown (transient), b never had its data sent and goes again on a new connection.
    script, channel = scripted
    script.hang_up_on_end_of_data = 1
    to = residents("a@example.jp", "b@example.jp", "c@example.jp")
    results = await channel.send_batch(to, MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code) for r in results] == [
        (Outcome.TRANSIENT, "NETWORK"),
        (Outcome.SENT, None),
        (Outcome.SENT, None),
    ]
    assert script.connections == 2 and len(script.messages) == 2
    rcpt_b = [w for w in script.writes if b"RCPT TO:<b@example.jp>" in w]
    assert len(rcpt_b) == 2  # its envelope left twice, its data once


def envelope_and_chunk(to: str, message: bytes) -> bytes:
    size = len(message)
    mail = b"RSET\r\nMAIL FROM:<info@city.example.jp> SIZE=%d\r\n" % size
    return mail + b"RCPT TO:<%b>\r\nBDAT %d LAST\r\n%b" % (to.encode(), size, message)


async def test_with_chunking_a_window_of_messages_is_one_write(scripted) -> None:
    # RFC 3030: no 354 to wait for, so CHUNK_WINDOW messages leave together, each message's
    # exact bytes (no dot-stuffing, no final dot) after its BDAT.
    script, channel = scripted
    script.chunking = True
    addresses = [f"r{i}@example.jp" for i in range(CHUNK_WINDOW + 2)]
    results = await channel.send_batch(residents(*addresses), MESSAGE, CONTEXT)
    assert [r.outcome for r in results] == [Outcome.SENT] * len(addresses)
    writes = [w for w in script.writes if not w.startswith((b"EHLO", b"QUIT"))]
    assert writes == [
        b"".join(envelope_and_chunk(a, m) for a, m in zip(window, sent, strict=True))
        for window, sent in (
            (addresses[:CHUNK_WINDOW], script.messages[:CHUNK_WINDOW]),
            (addresses[CHUNK_WINDOW:], script.messages[CHUNK_WINDOW:]),
        )
    ]
    assert b"\r\n.\xe5" not in script.messages[0] and script.messages[0].endswith(b"\r\n")
    assert script.connections == 1 and len(script.messages) == len(addresses)


@pytest.mark.parametrize("strict", [False, True])
async def test_with_chunking_a_refused_recipient_costs_only_its_message(
    scripted, strict: bool
) -> None:
    # The server reads the refused message's chunk and answers 554. A server that then stays
    # in the transaction would refuse the next MAIL as nested; each message's RSET ends that.
    script, channel = scripted
    script.chunking, script.strict_after_failed_chunk = True, strict
    to = residents("a@example.jp", "refused@example.jp", "c@example.jp", "d@example.jp")
    results = await channel.send_batch(to, MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code, r.prune) for r in results] == [
        (Outcome.SENT, None, False),
        (Outcome.PERMANENT, "SMTP_550", True),
        (Outcome.SENT, None, False),
        (Outcome.SENT, None, False),
    ]
    assert len(script.messages) == 3 and script.connections == 1
    assert sum(w.count(b"RCPT TO:<c@example.jp>") for w in script.writes) == 1


async def test_with_chunking_a_hang_up_leaves_the_unanswered_messages_unsure(scripted) -> None:
    # The connection closes at the end of b's chunk: a was answered (sent); b and c had left
    # with no answer, so they may or may not have arrived (transient, retried later); the
    # rest goes on a new connection.
    script, channel = scripted
    script.chunking, script.hang_up_on_end_of_data = True, 0
    to = residents(*(f"{c}@example.jp" for c in "abcdefghijk"))
    script.hang_up_on_end_of_data = 0
    original_end = ScriptedSmtp.end_of_chunk
    seen: list[int] = []

    def end_of_chunk(self: ScriptedSmtp, body: bytes) -> None:
        seen.append(1)
        if len(seen) == 2:
            script.hang_up_on_end_of_data = 1
        original_end(self, body)

    ScriptedSmtp.end_of_chunk = end_of_chunk  # type: ignore[method-assign]
    try:
        results = await channel.send_batch(to, MESSAGE, CONTEXT)
    finally:
        ScriptedSmtp.end_of_chunk = original_end  # type: ignore[method-assign]
    outcomes = [(r.outcome, r.error_code) for r in results]
    unsure = CHUNK_WINDOW - 1  # b and every later message of the first write
    assert outcomes[0] == (Outcome.SENT, None)
    assert outcomes[1 : 1 + unsure] == [(Outcome.TRANSIENT, "NETWORK")] * unsure
    assert outcomes[1 + unsure :] == [(Outcome.SENT, None)] * (len(to) - 1 - unsure)
    assert script.connections == 2 and len(script.messages) == len(to) - unsure


async def test_without_pipelining_each_command_waits_for_its_reply(scripted) -> None:
    script, channel = scripted
    script.pipelining = False
    results = await channel.send_batch(residents("a@example.jp", "b@example.jp"), MESSAGE, CONTEXT)
    assert [r.outcome for r in results] == [Outcome.SENT] * 2
    assert script.out_of_turn == 0
    assert [w for w in script.writes if w.startswith((b"MAIL", b"RCPT"))] == [
        b"MAIL FROM:<info@city.example.jp> SIZE=%d\r\n" % len(wire_data(script.messages[0])),
        b"RCPT TO:<a@example.jp>\r\n",
        b"MAIL FROM:<info@city.example.jp> SIZE=%d\r\n" % len(wire_data(script.messages[1])),
        b"RCPT TO:<b@example.jp>\r\n",
    ]


@pytest.mark.parametrize("data_despite_refusal", [False, True])
async def test_a_refused_recipient_leaves_the_session_clean(
    scripted, data_despite_refusal: bool
) -> None:
    # With PIPELINING the DATA is already on its way when RCPT is refused. A server that
    # answers it with 354 gets an empty message ("."), then RSET; the next message goes on
    # the same connection.
    script, channel = scripted
    script.data_despite_refusal = data_despite_refusal
    results = await channel.send_batch(
        residents("refused@example.jp", "b@example.jp"), MESSAGE, CONTEXT
    )
    assert [(r.outcome, r.error_code, r.prune) for r in results] == [
        (Outcome.PERMANENT, "SMTP_550", True),
        (Outcome.SENT, None, False),
    ]
    assert (b".\r\n" in script.writes) is data_despite_refusal
    assert b"RSET\r\n" in script.writes
    assert script.connections == 1 and len(script.messages) == 1


async def test_a_server_that_hangs_up_mid_message_costs_a_reconnect(scripted) -> None:
    script, channel = scripted
    script.hang_up_on_data = 1
    results = await channel.send_batch(residents("a@example.jp", "b@example.jp"), MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code) for r in results] == [
        (Outcome.TRANSIENT, "NETWORK"),
        (Outcome.SENT, None),
    ]
    assert script.connections == 2


async def test_an_internationalised_address_asks_for_smtputf8(scripted) -> None:
    script, channel = scripted
    results = await channel.send_batch(residents("市民@例え.jp"), MESSAGE, CONTEXT)
    assert results[0].outcome is Outcome.SENT
    envelope = next(w for w in script.writes if w.startswith(b"MAIL FROM:"))
    assert b" SMTPUTF8\r\nRCPT TO:<" + "市民@例え.jp".encode() + b">\r\n" in envelope


def test_the_data_payload_ends_with_the_dot_and_doubles_leading_dots() -> None:
    assert wire_data(b"a\r\n.b\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"


@pytest.mark.parametrize("length", range(1, 7))
def test_every_mix_of_line_endings_becomes_crlf(length: int) -> None:
    # Every string of these bytes up to six long: the CRLF-already shortcut and the rewrite
    # must agree with the rule "each CRLF, lone LF and lone CR is one line end".
    for parts in itertools.product((b"a", b"\r", b"\n", b"\r\n"), repeat=length):
        message = b"".join(parts)
        lines = re.split(rb"\r\n|\n|\r", message)
        expected = b"\r\n".join(lines if lines[-1] else lines[:-1]) + b"\r\n"
        assert wire_data(message) == expected + b".\r\n", message


@pytest.mark.parametrize(
    "address", ["a@example.jp>\r\nRSET", "a@example.jp> NOTIFY=NEVER", "a\x00b@example.jp"]
)
def test_an_address_that_could_smuggle_commands_is_refused(address: str) -> None:
    with pytest.raises(ValueError):
        _path(address, "utf-8")


class TlsOnlyHandler:
    """aiosmtpd hooks: offers PIPELINING, keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        assert session.ssl is not None  # nothing went in the clear
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        return "250 OK"


async def test_messages_go_over_starttls(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # STARTTLS replaces the transport under aiosmtplib's client; the session must take the
    # encrypted one over (the server refuses anything before STARTTLS).
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # what the client's default context trusts
    handler = TlsOnlyHandler()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, tls_context=server_context, require_starttls=True),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    channel = EmailChannel(
        host="localhost", port=port, mail_from="info@city.example.jp", tls="starttls"
    )
    try:
        results = await channel.send_batch(
            residents("a@example.jp", "b@example.jp"), MESSAGE, CONTEXT
        )
    finally:
        server.close()
    assert [r.outcome for r in results] == [Outcome.SENT] * 2
    assert [(m[0], m[1]) for m in handler.messages] == [
        ("info@city.example.jp", ["a@example.jp"]),
        ("info@city.example.jp", ["b@example.jp"]),
    ]
