"""SMTP simulator: aiosmtpd on 127.0.0.1 that keeps every message, bounces and fails on demand.

The SMTP server and its HTTP control side run in the caller's event loop. Control routes
(besides `sandbox.common`'s `/_sandbox/log|counters|faults|limits|reset`):

- `POST /_sandbox/smtp/bounces` `{"hard": ["a@x.jp", "@dead.example"], "dsn": [...]}`: `hard`
  addresses (or whole `@domains`) get `550 5.1.1` at RCPT; `dsn` ones are accepted and then
  answered by an RFC 3464 delivery-status report, delivered to the envelope sender.
- `GET /_sandbox/smtp/messages?recipient=&limit=` summaries; `GET .../messages/{id}/raw` bytes.
- Limits `reader_open_share` / `reader_click_share` (0 by default): simulated readers fetch the
  open pixel and click the first link of that share of delivered messages (`sandbox.smtp_reader`).

Faults: `error_share` answers `451 4.3.0` at RCPT (a temporary failure), `timeout_share` stops
answering for `hang_s`, `slow_ms` delays every RCPT. Set `paths` to `["DATA"]` or `["MAIL"]`
to fail another command instead.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import itertools
import re
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, cast

from aiohttp import web
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.common import AppServer, SandboxState, make_sandbox_app
from sandbox.smtp_reader import READER_LIMITS, MailReaders

DEFAULT_LIMITS: dict[str, Any] = {
    "enabled": True,
    "max_recipients_per_message": 100,
    "dsn_delay_s": 0.05,
    # RFC 2920, as Postfix, Amazon SES and SendGrid offer it; off: a server without it.
    "pipelining": True,
    # RFC 3030 BDAT, as Postfix (3.4 on), Exchange and Gmail offer it; off: DATA only.
    "chunking": True,
    **READER_LIMITS,  # simulated readers opening / clicking (sandbox.smtp_reader); off
}
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    received_at: float
    kind: str = "message"  # "message" | "dsn"
    helo: str = ""  # the name the client gave in EHLO/HELO (a real MTA's Received: from)

    def summary(self) -> dict[str, Any]:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(self.raw)
        return {
            "id": self.id,
            "kind": self.kind,
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "size": len(self.raw),
            "subject": str(headers.get("Subject", "")),
            "received_at": self.received_at,
            "helo": self.helo,
        }


@dataclass(slots=True)
class Mailbox:
    """Bounded store of accepted messages plus the bounce rules."""

    maxlen: int = 10_000
    messages: deque[StoredMessage] = field(default_factory=deque)
    hard_bounces: set[str] = field(default_factory=set)
    dsn_bounces: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def keep(
        self, mail_from: str, rcpt_tos: list[str], raw: bytes, kind: str, helo: str = ""
    ) -> StoredMessage:
        stored = StoredMessage(
            next(self._ids), mail_from, tuple(rcpt_tos), raw, time.time(), kind, helo
        )
        self.messages.append(stored)
        while len(self.messages) > self.maxlen:
            self.messages.popleft()
        return stored

    @staticmethod
    def _matches(rules: set[str], address: str) -> bool:
        address = address.lower()
        return address in rules or ("@" + address.rpartition("@")[2]) in rules

    def is_hard_bounce(self, address: str) -> bool:
        return self._matches(self.hard_bounces, address)

    def wants_dsn(self, address: str) -> bool:
        return self._matches(self.dsn_bounces, address)

    def reset(self) -> None:
        self.messages.clear()
        self.hard_bounces.clear()
        self.dsn_bounces.clear()


def build_dsn(original: StoredMessage, recipient: str, hostname: str) -> bytes:
    """An RFC 3464 delivery-status notification for one failed recipient."""
    headers = original.raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    boundary = f"dsn-{original.id}-{int(time.time() * 1000)}"
    lines = [
        f"From: Mail Delivery Subsystem <MAILER-DAEMON@{hostname}>",
        f"To: <{original.mail_from}>",
        "Subject: Delivery Status Notification (Failure)",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: <dsn.{original.id}@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"Delivery to <{recipient}> failed permanently: the mailbox does not exist.",
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {hostname}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        headers,
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


# `<local@domain>` with both sides plain dot-atoms (RFC 5322 3.2.3), and what follows. For
# such an address the header parser's answer is the text itself, and it is what nearly every
# sender writes; the parser, a third of this server's CPU in a big send, runs for the rest.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDR = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)>(.*)", re.S)


def _parse_address(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    """`SMTP._getaddr` of aiosmtpd 1.4.6: (address, rest), (None, None) when unparsable."""
    plain = _PLAIN_ANGLE_ADDR.fullmatch(arg)
    if plain is None or "(" in plain.group(2):  # a comment after it: the parser's job
        return _parse_address_fully(arg, local_part_limit)
    addr, rest = plain.groups()
    if local_part_limit and len(addr.rpartition("@")[0]) > local_part_limit:
        return None, None
    # As the parser does: blanks after the address go, and with them all whitespace.
    return addr, rest.lstrip() if rest[:1] in (" ", "\t") else rest


@functools.lru_cache(maxsize=1024)
def _parse_address_fully(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    if not arg:
        return "", ""
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    addr = address.addr_spec
    if local_part_limit and len(addr.rpartition("@")[0]) > local_part_limit:
        return None, None
    return addr, rest


# aiosmtpd closes the connection right after these (QUIT, limits, bogus commands, a BDAT
# without a size).
_REPLIES_BEFORE_HANG_UP = frozenset((b"221", b"421", b"501", b"502"))


class SandboxSMTP(SMTP):
    """aiosmtpd's server with RFC 3030's BDAT, which aiosmtpd lacks: `BDAT <size> [LAST]`
    and exactly `size` octets follow, no dot-stuffing, no end marker. The chunk is read
    whatever the state, so a refused transaction never turns message text into commands
    (RFC 3030 2); after the LAST chunk the transaction is over, delivered or not."""

    _chunks: list[bytes]
    _replies: list[bytes] | None = None  # answers held while more pipelined input waits

    async def push(self, status: str | bytes) -> None:
        # RFC 2920 3.2 lets a server answer pipelined commands in groups; Postfix flushes
        # when no more input is waiting. One send() per reply was a third of this server's
        # CPU in a big send. A reply that may come just before a hang-up goes out at once:
        # aiosmtpd closes the transport right after it, and held bytes would be lost.
        response = (
            status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
            if isinstance(status, str)
            else status
        )
        first = self._replies is None
        if self._replies is None:
            self._replies = []
        self._replies.append(response + b"\r\n")
        more_input = bool(self._reader._buffer)  # type: ignore[attr-defined]
        if more_input and response[:3] not in _REPLIES_BEFORE_HANG_UP:
            if first:
                self.loop.call_soon(self._send_replies)  # at the latest when this task waits
            return
        self._send_replies()
        await self._writer.drain()

    def _send_replies(self) -> None:
        held, self._replies = self._replies, None
        if held and self.transport is not None:
            self._writer.write(b"".join(held))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd's `_getaddr` defines a typing.Protocol class on every call, a tenth of
        # this server's CPU in a send; the parse is the same, and MAIL FROM repeats.
        return _parse_address(arg, self.local_part_limit)

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()
        self._chunks = []

    async def smtp_BDAT(self, arg: str | None) -> None:
        handler = cast(SandboxHandler, self.event_handler)
        size, _, last = (arg or "").strip().partition(" ")  # aiosmtpd passes None: no argument
        if not handler.state.limits["chunking"]:
            await self.push('500 Error: command "BDAT" not recognized')
            return
        if not size.isdigit() or last.strip().upper() not in ("", "LAST"):
            # Without a size there is no telling where the chunk ends: hang up.
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]")
            self.transport.close()  # type: ignore[union-attr]
            return
        refused = self._chunk_refusal(int(size))
        try:
            chunk = await self._read_chunk(int(size), keep=refused is None)
        except asyncio.IncompleteReadError:
            return  # the client hung up mid-chunk; connection_lost closes the session
        if refused is not None:
            # The transaction is over; chunks of it still in the pipeline meet "need MAIL".
            self._set_post_data_state()
            await self.push(refused)
            return
        self._chunks.append(chunk)
        if not last.strip():
            await self.push(f"250 2.0.0 {len(chunk)} octets received")
            return
        assert self.envelope is not None
        self.envelope.original_content = self.envelope.content = b"".join(self._chunks)
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_chunk(self, size: int, *, keep: bool) -> bytes:
        """The chunk's `size` octets; one that is refused is read piece by piece and dropped,
        so a client announcing gigabytes costs no memory."""
        if keep:
            return await self._reader.readexactly(size)
        while size:
            size -= len(await self._reader.readexactly(min(size, 1 << 16)))
        return b""

    def _chunk_refusal(self, size: int) -> str | None:
        """Why a chunk of `size` octets cannot join the transaction, if it cannot."""
        assert self.session is not None and self.envelope is not None
        if not self.session.host_name:
            return "503 5.5.1 Error: send HELO first"
        if self.envelope.mail_from is None:
            return "503 5.5.1 Error: need MAIL command"
        if not self.envelope.rcpt_tos:
            return "554 5.5.1 Error: no valid recipients"
        if sum(map(len, self._chunks)) + size > (self.data_size_limit or MAX_MESSAGE_BYTES):
            return "552 5.3.4 Error: message too big"
        return None


class SandboxHandler:
    """aiosmtpd handler hooks: bounce rules, faults, limits, storage and counters."""

    def __init__(self, state: SandboxState, mailbox: Mailbox, hostname: str) -> None:
        self.state, self.mailbox, self.hostname = state, mailbox, hostname
        self.readers = MailReaders(state.limits, state.counters)

    async def _fault(self, command: str, address: str = "") -> str | None:
        faults = self.state.faults
        if not faults.active():
            return None
        paths = faults.config.paths
        if (paths is None and command != "RCPT") or (paths is not None and command not in paths):
            return None
        fault, delay = faults.draw(command)
        if delay:
            await asyncio.sleep(delay)
        if fault is None:
            return None
        self.state.log.add({"method": "SMTP", "path": command, "to": address, "fault": fault})
        if fault == "timeout":
            await asyncio.sleep(faults.config.hang_s)
        self.state.counters.add("deferred", address or command)
        return "451 4.3.0 Temporary failure, please try again later (sandbox)"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does when no hook is set
        if self.state.limits["pipelining"]:
            # aiosmtpd reads one command line at a time from the stream, so commands that
            # arrive together are answered in order, as RFC 2920 asks.
            responses.insert(-1, "250-PIPELINING")
        if self.state.limits["chunking"]:
            responses.insert(-1, "250-CHUNKING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if getattr(server, "_sandbox_auth", False) and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if (failed := await self._fault("MAIL")) is not None:
            return failed
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        limits = self.state.limits
        if limits["enabled"] and len(envelope.rcpt_tos) >= limits["max_recipients_per_message"]:
            return "452 4.5.3 Too many recipients"
        if self.mailbox.is_hard_bounce(address):
            self.state.counters.add("bounced", address)
            self.state.log.add({"method": "SMTP", "path": "RCPT", "to": address, "status": 550})
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if (failed := await self._fault("RCPT", address)) is not None:
            return failed
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (failed := await self._fault("DATA")) is not None:
            return failed
        raw = envelope.original_content or b""
        stored = self.mailbox.keep(
            envelope.mail_from or "", envelope.rcpt_tos, raw, "message", session.host_name or ""
        )
        self.state.counters.add_many("delivered", envelope.rcpt_tos)
        self.state.log.add(
            {
                "method": "SMTP",
                "path": "DATA",
                "id": stored.id,
                "to": envelope.rcpt_tos,
                "size": len(raw),
                "status": 250,
            }
        )
        self.readers.delivered(raw, [r for r in envelope.rcpt_tos if not self.mailbox.wants_dsn(r)])
        for rcpt in envelope.rcpt_tos:
            if self.mailbox.wants_dsn(rcpt) and stored.mail_from:
                asyncio.get_running_loop().call_later(
                    float(self.state.limits["dsn_delay_s"]), self._send_dsn, stored, rcpt
                )
        return f"250 2.0.0 Ok: queued as SBX{stored.id:08d}"

    def _send_dsn(self, original: StoredMessage, recipient: str) -> None:
        raw = build_dsn(original, recipient, self.hostname)
        self.mailbox.keep("", [original.mail_from], raw, "dsn")
        self.state.counters.add("dsn", recipient)


MAILBOX_KEY: web.AppKey[Mailbox] = web.AppKey("smtp_mailbox", Mailbox)


async def _set_bounces(request: web.Request) -> web.Response:
    mailbox = request.app[MAILBOX_KEY]
    body = await request.json()
    mailbox.hard_bounces.update(a.lower() for a in body.get("hard", []))
    mailbox.dsn_bounces.update(a.lower() for a in body.get("dsn", []))
    return web.json_response(
        {"hard": sorted(mailbox.hard_bounces), "dsn": sorted(mailbox.dsn_bounces)}
    )


async def _list_messages(request: web.Request) -> web.Response:
    mailbox = request.app[MAILBOX_KEY]
    recipient = request.query.get("recipient")
    limit = int(request.query.get("limit", "100"))
    found = [m for m in mailbox.messages if recipient is None or recipient in m.rcpt_tos]
    return web.json_response({"messages": [m.summary() for m in found[-limit:]]})


async def _raw_message(request: web.Request) -> web.Response:
    wanted = int(request.match_info["id"])
    for message in request.app[MAILBOX_KEY].messages:
        if message.id == wanted:
            return web.Response(body=message.raw, content_type="message/rfc822")
    return web.json_response({"message": "no such message (or no longer kept)"}, status=404)


class SmtpSandbox:
    """`await SmtpSandbox().start()`; `.host`, `.port`, `.control_url`, `.mailbox`, `.state`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "mx.sandbox.local",
        credentials: tuple[str, str] | None = None,
        limits: dict[str, Any] | None = None,
        keep: int = 10_000,
    ) -> None:
        self.host, self._port, self.hostname, self._credentials = host, port, hostname, credentials
        self.state = SandboxState(name="smtp", limits={**DEFAULT_LIMITS, **(limits or {})})
        self.mailbox = Mailbox(maxlen=keep)
        self.state.reset_hooks.append(self.mailbox.reset)
        self.handler = SandboxHandler(self.state, self.mailbox, hostname)
        app = make_sandbox_app(self.state)
        app[MAILBOX_KEY] = self.mailbox
        app.router.add_post("/_sandbox/smtp/bounces", _set_bounces)
        app.router.add_get("/_sandbox/smtp/messages", _list_messages)
        app.router.add_get("/_sandbox/smtp/messages/{id}/raw", _raw_message)
        self._control = AppServer(app, host=host)
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.port = 0

    @property
    def control_url(self) -> str:
        return self._control.url

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False)

    def _make_protocol(self) -> SMTP:
        smtp = SandboxSMTP(
            self.handler,
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            hostname=self.hostname,
            auth_require_tls=False,
            authenticator=self._authenticate if self._credentials else None,
        )
        smtp._sandbox_auth = self._credentials is not None  # type: ignore[attr-defined]
        self._sessions.add(smtp)
        self.state.counters.add("connections", "smtp")  # proves connection reuse
        return smtp

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._make_protocol, self.host, self._port)
        self.port = self._server.sockets[0].getsockname()[1]
        await self._control.start()

    def describe(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "control_url": self.control_url}

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Python 3.12's wait_closed() waits for open connections: close them first.
            for smtp in list(self._sessions):
                if smtp.transport is not None:
                    smtp.transport.close()
            await self._server.wait_closed()
            self._server = None
        await self.handler.readers.close()
        await self._control.stop()
