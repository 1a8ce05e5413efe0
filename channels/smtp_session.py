"""The SMTP conversation of a batch's messages, on a connection aiosmtplib opened.

aiosmtplib connects, says EHLO, starts TLS and logs in: what it does well. A batch's messages
then go through `SmtpSession.send_all`, which owns the connection from there on:

- with PIPELINING (RFC 2920, offered by Postfix, Amazon SES, SendGrid and the sandbox): a
  message's MAIL, RCPT and DATA leave in one write and their replies are read in order; once
  DATA is accepted, the message itself waits for the next message's envelope and leaves with
  it (RFC 2920 3.1: message content may open a group). One round trip a message, one write;
- with PIPELINING and CHUNKING (RFC 3030, offered by Postfix 3.4 on, Exchange, Gmail and the
  sandbox): each message is RSET, MAIL, RCPT and `BDAT <size> LAST` followed by its bytes,
  which need no 354 to wait for, so `CHUNK_WINDOW` messages leave in one write and their
  replies are read together: one round trip for several messages, no dot-stuffing;
- without PIPELINING: one command, one reply, as aiosmtplib's `sendmail` does.

aiosmtplib's `sendmail` spends a lock, an injection regex per argument, an `asyncio.wait_for`
and a new future on every command, four round trips a message. Against the SMTP sandbox
(4 connections, 6,000 messages) the adapter's CPU went from 0.27-0.35 ms a message with
`sendmail` to 0.22 ms with two round trips, 0.18 ms with one, and 0.12 ms with CHUNKING
(`python -m bench channels_email --messages 6000`). Few round trips matter most when the
machine is busy: each reply waits for the server and then for this event loop to be
scheduled. Under CHUNKING the server reads a message in one piece instead of line by line:
the SMTP sandbox's CPU for a 1M send's 100,000 mails went from 36.6 to 25.9 s.

Errors are aiosmtplib's exception classes, raised where its `sendmail` raises them, so
`channels.email_errors` reads them the same way. An address that is not exactly one mailbox
by aiosmtplib's own parser (plain ones, the bulk, are checked by a shortcut) is refused with
ValueError before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from typing import cast

import aiosmtplib
from aiosmtplib import SMTPStatus
from aiosmtplib.email import parse_address

from channels.email_errors import is_connection_lost
from channels.email_mime import is_plain_address

_LINE_ENDINGS = re.compile(rb"(?:\r\n|\n|\r(?!\n))")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_REPLY_LINE_LIMIT = 8192  # RFC 5321 allows 512 octets; anything far longer is not SMTP


# Messages of one write under CHUNKING. Their replies come back together; a lost connection
# leaves those not yet answered unsure (perhaps delivered), so this is also how many messages
# a hang-up can send twice.
CHUNK_WINDOW = 8

# A message ready to go: (its position, recipient, MAIL, RCPT, the DATA payload or the BDAT
# command with its chunk).
_Prepared = tuple[int, str, bytes, bytes, bytes]


def _crlf(message: bytes) -> bytes:
    crlf = message.count(b"\r\n")
    if crlf == message.count(b"\n") == message.count(b"\r") and message.endswith(b"\r\n"):
        return message  # the hub's own mails are CRLF already: three counts beat a rewrite
    message = _LINE_ENDINGS.sub(b"\r\n", message)
    return message if message.endswith(b"\r\n") else message + b"\r\n"


def wire_data(message: bytes) -> bytes:
    """The DATA payload: CRLF line endings, leading dots doubled, the final dot (RFC 5321
    4.5.2; what aiosmtplib's `data` sends)."""
    return _LEADING_DOT.sub(b"..", _crlf(message)) + b".\r\n"


def _path(address: str, encoding: str) -> bytes:
    """`<address>` for MAIL FROM / RCPT TO, or ValueError for anything but one mailbox."""
    if is_plain_address(address):
        return b"<%b>" % address.encode("ascii")
    # aiosmtplib's parser refuses what could smuggle parameters or commands; it would also
    # quietly drop a tail ("a@b.jp> NOTIFY=NEVER" → a@b.jp): that is refused here too.
    if parse_address(address) != address or _CONTROL.search(address.encode(encoding)):
        raise ValueError(f"not a single mailbox: {address!r}")
    return b"<%b>" % address.encode(encoding)


class SmtpSession:
    def __init__(
        self,
        transport: asyncio.Transport,
        reader: asyncio.StreamReader,
        *,
        pipelining: bool,
        size: bool,
        smtputf8: bool,
        chunking: bool = False,
    ) -> None:
        self._transport, self._reader = transport, reader
        self.pipelining, self._size, self._smtputf8 = pipelining, size, smtputf8
        self.chunking = chunking and pipelining

    @classmethod
    def take_over(cls, client: aiosmtplib.SMTP) -> SmtpSession:
        """The connection of `client` (connected, EHLO said, TLS and login done), which must
        not be used after this: its replies now reach this session."""
        if client.transport is None or client.is_ehlo_or_helo_needed:
            raise aiosmtplib.SMTPServerDisconnected("no SMTP session to take over")
        transport = cast(asyncio.Transport, client.transport)
        reader = asyncio.StreamReader(limit=_REPLY_LINE_LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return cls(
            transport,
            reader,
            pipelining=client.supports_extension("pipelining"),
            size=client.supports_extension("size"),
            smtputf8=client.supports_extension("smtputf8"),
            chunking=client.supports_extension("chunking"),
        )

    @property
    def closed(self) -> bool:
        return self._transport.is_closing()

    async def send_all(
        self, mail_from: str, messages: Sequence[tuple[str, bytes]], *, timeout_s: float
    ) -> dict[int, Exception | None]:
        """Each (recipient, message) in turn → the outcome by position: None if accepted,
        else what aiosmtplib's `sendmail` would raise. When the connection is lost (a hang-up,
        or a reply later than `timeout_s`), the session is closed and the message whose data
        was on its way gets the error (under CHUNKING: each message of the write whose
        reply was not read); a message whose envelope alone had left rode along with
        another's data and is left out: the caller sends it again on a new session."""
        outcomes: dict[int, Exception | None] = {}
        if not self.pipelining:
            for position, (to, raw) in enumerate(messages):
                try:
                    async with asyncio.timeout(timeout_s):
                        await self.send(mail_from, to, raw)
                    outcomes[position] = None
                except Exception as exc:  # handed to the caller as this message's outcome
                    outcomes[position] = exc
                    if is_connection_lost(exc):
                        self.close()
                        break
            return outcomes
        prepared: list[_Prepared] = []
        for position, (to, raw) in enumerate(messages):
            try:  # raises before anything is written
                prepared.append((position, to, *self._prepare(mail_from, to, raw, self.chunking)))
            except (ValueError, aiosmtplib.SMTPNotSupported) as exc:
                outcomes[position] = exc
        send = self._chunked if self.chunking else self._chain
        await send(mail_from, prepared, timeout_s, outcomes)
        return outcomes

    async def _chunked(
        self,
        mail_from: str,
        prepared: list[_Prepared],
        timeout_s: float,
        outcomes: dict[int, Exception | None],
    ) -> None:
        window: list[_Prepared] = []  # written, replies not all read
        try:
            for start in range(0, len(prepared), CHUNK_WINDOW):
                window = prepared[start : start + CHUNK_WINDOW]
                # Each message opens with RSET: after a refused BDAT LAST, RFC 3030 does not
                # say whether the transaction is over, and the next message is already on its
                # way; RSET makes its MAIL start clean on every server.
                self._transport.write(
                    b"".join(
                        b"RSET\r\n%b%b%b" % (mail, rcpt, chunk) for *_, mail, rcpt, chunk in window
                    )
                )
                async with asyncio.timeout(timeout_s):
                    for position, to, *_ in window:
                        replies = [await self._reply() for _ in range(4)][1:]
                        outcomes[position] = _refusal(
                            replies, mail_from, to, accepted=_CHUNK_ACCEPTED
                        )
        except (aiosmtplib.SMTPServerDisconnected, TimeoutError) as exc:
            self.close()
            for position, *_ in window:  # its bytes left: perhaps delivered, perhaps not
                outcomes.setdefault(position, exc)

    async def _chain(
        self,
        mail_from: str,
        prepared: list[_Prepared],
        timeout_s: float,
        outcomes: dict[int, Exception | None],
    ) -> None:
        held: tuple[int, bytes] | None = None  # an accepted envelope's data, not yet sent
        in_flight: int | None = None  # the message whose data left, its reply not read
        position, alone = -1, True
        try:
            for position, to, mail, rcpt, data in prepared:
                payload = b"%b%bDATA\r\n" % (mail, rcpt)
                if held is not None:
                    (in_flight, before), held = held, None
                    payload = before + payload
                alone = in_flight is None
                self._transport.write(payload)
                async with asyncio.timeout(timeout_s):
                    if in_flight is not None:
                        outcomes[in_flight], in_flight = await self._data_outcome(), None
                    replies = [await self._reply() for _ in range(3)]
                    refused = _refusal(replies, mail_from, to)
                    if refused is None:
                        held = (position, data)
                        continue
                    outcomes[position] = refused
                    if replies[2][0] == SMTPStatus.start_input:
                        await self._command(b".\r\n")  # DATA went ahead anyway: end it empty
                    await self._command(b"RSET\r\n")
            if held is not None:
                (in_flight, data), held = held, None
                self._transport.write(data)
                async with asyncio.timeout(timeout_s):
                    outcomes[in_flight], in_flight = await self._data_outcome(), None
        except (aiosmtplib.SMTPServerDisconnected, TimeoutError) as exc:
            self.close()
            if in_flight is not None:
                outcomes[in_flight] = exc
            elif alone and position >= 0:  # its envelope was all that was on its way
                outcomes.setdefault(position, exc)

    def _prepare(
        self, mail_from: str, to: str, message: bytes, chunked: bool = False
    ) -> tuple[bytes, bytes, bytes]:
        """(MAIL, RCPT, the DATA payload or the BDAT command with its chunk); raises before
        anything is written."""
        utf8 = not (mail_from.isascii() and to.isascii())
        if utf8 and not self._smtputf8:
            raise aiosmtplib.SMTPNotSupported("the SMTP server does not offer SMTPUTF8")
        encoding = "utf-8" if utf8 else "ascii"
        if chunked:
            chunk = _crlf(message)
            size, data = len(chunk), b"BDAT %d LAST\r\n%b" % (len(chunk), chunk)
        else:
            data = wire_data(message)
            size = len(data)
        options = (b" SIZE=%d" % size if self._size else b"") + (b" SMTPUTF8" if utf8 else b"")
        mail = b"MAIL FROM:%b%b\r\n" % (_path(mail_from, encoding), options)
        rcpt = b"RCPT TO:%b\r\n" % _path(to, encoding)
        return mail, rcpt, data

    async def _data_outcome(self) -> Exception | None:
        code, text = await self._reply()
        return None if code == SMTPStatus.completed else aiosmtplib.SMTPDataError(code, text)

    async def send(self, mail_from: str, to: str, message: bytes) -> None:
        """One message to one recipient, one command and one reply at a time (a server
        without PIPELINING); raises as aiosmtplib's `sendmail` would, after a refusal resets
        the session (RSET) so the next message starts clean."""
        mail, rcpt, data = self._prepare(mail_from, to, message)
        try:
            for stage, command in enumerate((mail, rcpt, b"DATA\r\n")):
                refused = _refusal([await self._command(command)], mail_from, to, stage=stage)
                if refused is not None:
                    raise refused
            self._transport.write(data)
            outcome = await self._data_outcome()
            if outcome is not None:
                raise outcome
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            with contextlib.suppress(aiosmtplib.SMTPException):
                await self._command(b"RSET\r\n")
            raise

    async def _command(self, line: bytes) -> tuple[int, str]:
        self._transport.write(line)
        return await self._reply()

    async def _reply(self) -> tuple[int, str]:
        """One reply, multi-line ones joined; a server that hangs up or does not speak SMTP
        ends the session (SMTPServerDisconnected: the caller reconnects)."""
        lines: list[bytes] = []
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:  # longer than any SMTP reply line
                line = b""
            if not line.endswith(b"\n") or not line[:3].isdigit():
                self.close()
                if not line:
                    raise aiosmtplib.SMTPServerDisconnected("the SMTP server hung up")
                raise aiosmtplib.SMTPServerDisconnected(f"not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines).decode("utf-8", "surrogateescape")

    async def quit(self) -> None:
        """QUIT and close; a server that does not answer is closed on anyway."""
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await self._command(b"QUIT\r\n")
        self.close()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()


# The replies of MAIL, RCPT and DATA that accept; under CHUNKING, BDAT's in place of DATA's.
_ACCEPTED = (
    (SMTPStatus.completed,),
    (SMTPStatus.completed, SMTPStatus.will_forward),
    (SMTPStatus.start_input,),
)
_CHUNK_ACCEPTED = (*_ACCEPTED[:2], (SMTPStatus.completed,))


def _refusal(
    replies: list[tuple[int, str]],
    mail_from: str,
    to: str,
    *,
    stage: int = 0,
    accepted: tuple[tuple[int, ...], ...] = _ACCEPTED,
) -> Exception | None:
    """The first refusal among the replies to MAIL, RCPT and DATA or BDAT (from `stage` on),
    as aiosmtplib raises it."""
    replied = zip(replies, accepted[stage:], strict=False)  # a prefix may have replied
    for command, ((code, text), accepting) in enumerate(replied, stage):
        if code in accepting:
            continue
        if command == 0:
            return aiosmtplib.SMTPSenderRefused(code, text, mail_from)
        if command == 1:
            refused = aiosmtplib.SMTPRecipientRefused(code, text, to)
            return aiosmtplib.SMTPRecipientsRefused([refused])
        return aiosmtplib.SMTPDataError(code, text)
    return None
