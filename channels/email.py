"""Email channel: aiosmtplib, one SMTP connection per batch (or per stripe of a batch).

A connection is never shared between concurrent tasks: with `connections > 1` the batch is
split into stripes and each stripe gets its own connection, used one message at a time.
Results per recipient: 5xx at RCPT is a hard bounce (pruned unless the enhanced status says
the problem is policy or the system, not the mailbox), 4xx is transient.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import ClassVar, Literal

import aiosmtplib
from aiosmtplib import SMTPStatus

from channels.base import ChannelName, DeliveryResult, EmailMessage, Recipient, SendContext
from channels.email_errors import classify_smtp_error, is_connection_lost
from channels.email_mime import MailTemplate, Sender, checked_unsubscribe_url, is_plain_address
from notify.errors import InvalidInput, PermanentChannelError, TransientChannelError

TlsMode = Literal["none", "starttls", "tls"]


class EmailChannel:
    name: ClassVar[ChannelName] = ChannelName.EMAIL
    max_batch: ClassVar[int] = 500
    max_body_chars: ClassVar[int] = 100_000
    max_title_chars: ClassVar[int] = 200  # subject
    supports_title: ClassVar[bool] = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        mail_from: str,
        from_name: str = "",
        envelope_from: str = "",
        list_id: str = "",
        username: str = "",
        password: str = "",
        tls: TlsMode = "none",
        timeout_s: float = 30.0,
        connections: int = 1,
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._username, self._password = username, password
        self._timeout = timeout_s
        self._connections = max(1, connections)
        self.sender = Sender(mail_from, from_name, envelope_from or mail_from, list_id)
        self._plain_from = is_plain_address(self.sender.envelope_from)  # checked once

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            timeout=self._timeout,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
        )
        try:
            await client.connect()
            if self._username:
                await client.login(self._username, self._password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _quietly_close(client)
            raise PermanentChannelError(
                f"SMTP login refused: {exc.code} {exc.message}", provider_code=str(exc.code)
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _quietly_close(client)
            raise TransientChannelError(
                f"cannot open an SMTP session with {self._host}:{self._port}: {exc}"
            ) from exc
        return client

    async def send_batch(
        self, recipients: Sequence[Recipient], message: EmailMessage, context: SendContext
    ) -> list[DeliveryResult]:
        if len(recipients) > self.max_batch:
            raise InvalidInput(f"at most {self.max_batch} recipients per email batch")
        if not recipients:
            return []
        for recipient in recipients:  # a bad URL is a whole-call error: refuse before sending
            if url := recipient.extra.get("unsubscribe_url"):
                checked_unsubscribe_url(url)
        template = MailTemplate(message, self.sender, broadcast_id=context.broadcast_id)
        results: list[DeliveryResult | None] = [None] * len(recipients)
        stripes = [
            list(range(start, len(recipients), self._connections))
            for start in range(min(self._connections, len(recipients)))
        ]
        first = await self._connect()  # cannot connect at all: a whole-call error
        clients: list[aiosmtplib.SMTP | None] = [first] + [None] * (len(stripes) - 1)

        async def run(stripe_no: int) -> None:
            client = clients[stripe_no]
            try:
                for index in stripes[stripe_no]:
                    if client is None:
                        try:
                            client = await self._connect()
                        except TransientChannelError as exc:
                            for rest in stripes[stripe_no]:
                                if results[rest] is None:
                                    results[rest] = DeliveryResult.transient("CONNECT", exc.message)
                            return
                    results[index], keep = await self._send_one(client, recipients[index], template)
                    if not keep:
                        await _quietly_close(client)
                        client = None
            finally:
                if client is not None:
                    await _quietly_quit(client)

        await asyncio.gather(*(run(n) for n in range(len(stripes))))
        return [r for r in results if r is not None]

    async def _send_one(
        self, client: aiosmtplib.SMTP, recipient: Recipient, template: MailTemplate
    ) -> tuple[DeliveryResult, bool]:
        """→ (result, whether the connection is still usable)."""
        try:
            raw, message_id = template.render(
                recipient.address, recipient.extra, endpoint_id=recipient.endpoint_id
            )
        except ValueError as exc:  # an address the email package cannot put in a header
            return DeliveryResult.permanent("BAD_ADDRESS", str(exc)[:300], prune=True), True
        try:
            if client.is_ehlo_or_helo_needed or not self._plain_envelope(recipient.address):
                options = [] if recipient.address.isascii() else ["SMTPUTF8"]
                await client.sendmail(
                    self.sender.envelope_from, [recipient.address], raw, mail_options=options
                )
            else:
                async with asyncio.timeout(self._timeout):  # one deadline for the message
                    await self._transfer(client, recipient.address, raw)
        except Exception as exc:  # translated at the boundary; nothing SDK-shaped escapes
            return classify_smtp_error(exc), not is_connection_lost(exc)
        return DeliveryResult.sent(message_id), True

    def _plain_envelope(self, to: str) -> bool:
        return self._plain_from and is_plain_address(to)

    async def _transfer(self, client: aiosmtplib.SMTP, to: str, raw: bytes) -> None:
        """What `client.sendmail` does for one recipient, for plain ASCII addresses (nothing
        on the command line but `[A-Za-z0-9…]@domain`, checked by `is_plain_address`):
        sendmail parses each address twice with the email package's address parser, ~60 µs
        a message, a tenth of the adapter's CPU. Same commands, same SIZE, same replies
        turned into the same exceptions, same RSET after a refusal.

        The caller's one deadline covers the whole message: aiosmtplib's own per-reply
        timeout (`asyncio.wait_for`, four a message) is a tenth of the adapter's CPU."""
        options = [f"SIZE={len(raw)}".encode()] if client.supports_extension("size") else []
        envelope = self.sender.envelope_from
        try:
            reply = await client.execute_command(
                b"MAIL", b"FROM:<%s>" % envelope.encode(), *options, timeout=None
            )
            if reply.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, envelope)
            reply = await client.execute_command(b"RCPT", b"TO:<%s>" % to.encode(), timeout=None)
            if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                refused = aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, to)
                raise aiosmtplib.SMTPRecipientsRefused([refused])
            await client.data(raw, timeout=None)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
                await client.rset()
            raise

    async def close(self) -> None:
        """Connections live only for one batch; nothing is held between batches."""


async def _quietly_quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    client.close()
