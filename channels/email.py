"""Email channel: one SMTP connection per batch (or per stripe of a batch), opened by
aiosmtplib, its messages sent by `channels.smtp_session` (pipelined when the server allows).

A connection is never shared between concurrent tasks: with `connections > 1` the batch is
split into stripes and each stripe gets its own connection, used one message at a time.
Results per recipient: 5xx at RCPT is a hard bounce (pruned unless the enhanced status says
the problem is policy or the system, not the mailbox), 4xx is transient.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Sequence
from typing import ClassVar, Literal

import aiosmtplib

from channels.base import ChannelName, DeliveryResult, EmailMessage, Recipient, SendContext
from channels.email_errors import classify_smtp_error
from channels.email_mime import MailTemplate, Sender, checked_unsubscribe_url
from channels.smtp_session import SmtpSession
from notify.errors import InvalidInput, PermanentChannelError, TransientChannelError

TlsMode = Literal["none", "starttls", "tls"]


@functools.cache
def _machine_fqdn() -> str:
    return socket.getfqdn()


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
        helo_name: str = "",
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._helo_name = helo_name  # "" → this machine's FQDN
        self._username, self._password = username, password
        self._timeout = timeout_s
        self._connections = max(1, connections)
        self.sender = Sender(mail_from, from_name, envelope_from or mail_from, list_id)

    async def _connect(self) -> SmtpSession:
        """A session ready for messages: connected, EHLO said, TLS and login done."""
        if not self._helo_name:
            # aiosmtplib would ask the resolver for every connection, i.e. every batch.
            self._helo_name = await asyncio.to_thread(_machine_fqdn)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            local_hostname=self._helo_name,
            timeout=self._timeout,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
        )
        try:
            await client.connect()
            if self._username:
                await client.login(self._username, self._password)
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            return SmtpSession.take_over(client)
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise PermanentChannelError(
                f"SMTP login refused: {exc.code} {exc.message}", provider_code=str(exc.code)
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise TransientChannelError(
                f"cannot open an SMTP session with {self._host}:{self._port}: {exc}"
            ) from exc

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
        rendered: dict[int, tuple[bytes, str]] = {}
        for index, recipient in enumerate(recipients):
            try:
                rendered[index] = template.render(
                    recipient.address, recipient.extra, endpoint_id=recipient.endpoint_id
                )
            except ValueError as exc:  # an address the email package cannot put in a header
                results[index] = DeliveryResult.permanent("BAD_ADDRESS", str(exc)[:300], prune=True)
        first = await self._connect()  # cannot connect at all: a whole-call error
        sessions: list[SmtpSession | None] = [first] + [None] * (len(stripes) - 1)

        async def run(stripe_no: int) -> None:
            session = sessions[stripe_no]
            todo = [index for index in stripes[stripe_no] if index in rendered]
            try:
                # Each round settles at least one message: a lost connection costs at most
                # the message whose data was on its way (see SmtpSession.send_all).
                while todo:
                    if session is None:
                        try:
                            session = await self._connect()
                        except TransientChannelError as exc:
                            for index in todo:
                                results[index] = DeliveryResult.transient("CONNECT", exc.message)
                            return
                    messages = [(recipients[i].address, rendered[i][0]) for i in todo]
                    outcomes = await session.send_all(
                        self.sender.envelope_from, messages, timeout_s=self._timeout
                    )
                    for position, error in outcomes.items():
                        index = todo[position]
                        results[index] = (
                            DeliveryResult.sent(rendered[index][1])
                            if error is None
                            else classify_smtp_error(error)
                        )
                    todo = [index for index in todo if results[index] is None]
                    if session.closed:
                        session = None
            finally:
                if session is not None:
                    await self._quit(session)

        await asyncio.gather(*(run(n) for n in range(len(stripes))))
        return [r for r in results if r is not None]

    async def _quit(self, session: SmtpSession) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await session.quit()
        except TimeoutError:
            session.close()

    async def close(self) -> None:
        """Connections live only for one batch; nothing is held between batches."""
