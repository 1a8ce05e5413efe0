"""The SMTP simulator, driven with aiosmtplib over real sockets; control read over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import aiohttp
import aiosmtplib
import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP

from sandbox.common import AppServer, SandboxControl
from sandbox.smtp import _PLAIN_ANGLE_ADDR, SandboxSMTP, SmtpSandbox
from tests.registry.test_email_address import isemail_cases


def mail(to: str, subject: str = "お知らせ") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "city@example.jp"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("本文です。")
    return message


async def send(sandbox: SmtpSandbox, message: EmailMessage, **kwargs: object) -> object:
    return await aiosmtplib.send(message, hostname=sandbox.host, port=sandbox.port, **kwargs)


async def test_messages_are_kept_with_their_bytes_and_counted(
    smtp: SmtpSandbox, session: aiohttp.ClientSession
) -> None:
    await send(smtp, mail("taro@example.jp"))
    await send(smtp, mail("taro@example.jp", "二通目"))
    await send(smtp, mail("hanako@example.jp"))
    control = SandboxControl(smtp.control_url, session)
    delivered = (await control.counters("delivered"))["delivered"]["by_recipient"]
    assert delivered == {"taro@example.jp": 2, "hanako@example.jp": 1}
    async with session.get(
        smtp.control_url + "/_sandbox/smtp/messages", params={"recipient": "taro@example.jp"}
    ) as response:
        summaries = (await response.json())["messages"]
    assert [s["subject"] for s in summaries] == ["お知らせ", "二通目"]
    async with session.get(
        f"{smtp.control_url}/_sandbox/smtp/messages/{summaries[1]['id']}/raw"
    ) as response:
        raw = await response.read()
    parsed = BytesParser(policy=default_policy).parsebytes(raw)
    assert parsed["Subject"] == "二通目"
    assert parsed.get_content().strip() == "本文です。"
    assert b"=?utf-8?" in raw  # the bytes as they crossed the wire, not a re-serialisation


async def test_hard_bounces_are_refused_at_rcpt(smtp: SmtpSandbox, session) -> None:
    async with session.post(
        smtp.control_url + "/_sandbox/smtp/bounces",
        json={"hard": ["gone@example.jp", "@dead.example"]},
    ) as response:
        assert response.status == 200
    for address in ("gone@example.jp", "anyone@dead.example"):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await send(smtp, mail(address))
        assert refused.value.recipients[0].code == 550
    async with aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port) as client:
        errors, _ = await client.send_message(
            mail("ok@example.jp"), recipients=["ok@example.jp", "gone@example.jp"]
        )
    assert errors["gone@example.jp"][0] == 550
    counters = await SandboxControl(smtp.control_url, session).counters()
    assert counters["bounced"]["total"] == 3
    assert counters["delivered"]["by_recipient"] == {"ok@example.jp": 1}


async def test_dsn_is_sent_to_the_envelope_sender(smtp: SmtpSandbox) -> None:
    smtp.mailbox.dsn_bounces.add("later@example.jp")
    await send(smtp, mail("later@example.jp"), sender="bounces+b42@city.example.jp")
    for _ in range(50):
        if any(m.kind == "dsn" for m in smtp.mailbox.messages):
            break
        await asyncio.sleep(0.02)
    dsn = next(m for m in smtp.mailbox.messages if m.kind == "dsn")
    assert dsn.rcpt_tos == ("bounces+b42@city.example.jp",)
    report = BytesParser(policy=default_policy).parsebytes(dsn.raw)
    assert report.get_content_type() == "multipart/report"
    assert b"Final-Recipient: rfc822; later@example.jp" in dsn.raw
    assert b"Status: 5.1.1" in dsn.raw


async def test_temporary_failures_are_4xx_and_seeded(smtp: SmtpSandbox, session) -> None:
    control = SandboxControl(smtp.control_url, session)

    async def run() -> list[int]:
        await control.faults(error_share=0.4, seed=3)
        codes = []
        async with aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port) as client:
            for i in range(20):
                try:
                    await client.send_message(mail(f"r{i}@example.jp"))
                    codes.append(250)
                except aiosmtplib.SMTPRecipientsRefused as refused:
                    codes.append(refused.recipients[0].code)
        return codes

    first, second = await run(), await run()
    assert first == second and set(first) == {250, 451}


async def test_hang_and_slow_answers(smtp: SmtpSandbox, session) -> None:
    control = SandboxControl(smtp.control_url, session)
    await control.faults(slow_ms=120)
    started = asyncio.get_running_loop().time()
    await send(smtp, mail("slow@example.jp"))
    assert asyncio.get_running_loop().time() - started >= 0.12
    await control.faults(timeout_share=1.0, hang_s=5)
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await send(smtp, mail("hang@example.jp"), timeout=0.3)


async def test_too_many_recipients(smtp: SmtpSandbox) -> None:
    smtp.state.update_limits({"max_recipients_per_message": 2})
    async with aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port) as client:
        errors, _ = await client.send_message(
            mail("a@example.jp"), recipients=["a@example.jp", "b@example.jp", "c@example.jp"]
        )
    assert errors["c@example.jp"][0] == 452


async def test_auth_when_configured() -> None:
    sandbox = SmtpSandbox(credentials=("hub", "s3cret"))
    await sandbox.start()
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await send(sandbox, mail("a@example.jp"))
        assert refused.value.code == 530
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await send(sandbox, mail("a@example.jp"), username="hub", password="wrong")
        await send(sandbox, mail("a@example.jp"), username="hub", password="s3cret")
        assert sandbox.state.counters.get("delivered", "a@example.jp") == 1
    finally:
        await sandbox.stop()


async def test_reset_forgets_messages_and_rules(smtp: SmtpSandbox, session) -> None:
    smtp.mailbox.hard_bounces.add("x@example.jp")
    await send(smtp, mail("y@example.jp"))
    await SandboxControl(smtp.control_url, session).reset()
    assert not smtp.mailbox.messages and not smtp.mailbox.hard_bounces
    await send(smtp, mail("x@example.jp"))
    assert smtp.state.counters.get("delivered", "x@example.jp") == 1


async def test_simulated_readers_fetch_the_pixel_and_click_loopback_links_only(
    smtp: SmtpSandbox, session: aiohttp.ClientSession
) -> None:
    seen: list[tuple[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("User-Agent", "")))
        return web.Response(status=302, headers={"Location": "http://192.0.2.1/never"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    hub = AppServer(app, host="127.0.0.1")
    await hub.start()
    try:
        control = SandboxControl(smtp.control_url, session)
        await control.limits(reader_open_share=1.0, reader_click_share=1.0, reader_delay_s=0.0)
        message = mail("reader@example.jp")
        message.add_alternative(
            # Off-host and unsubscribe links come first: a reader must pass over both.
            '<p><a href="http://192.0.2.1/elsewhere">外部</a>'
            f'<a href="{hub.url}/u/unsub">配信停止</a>'
            f'<a href="{hub.url}/c/tok?u=x">詳しく</a>'
            f'<img src="{hub.url}/o/tok.gif" width="1" height="1" alt=""></p>',
            subtype="html",
        )
        await send(smtp, message)
        for _ in range(100):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.02)
        await control.limits(reader_open_share=0.0)
        await send(smtp, message)
        await asyncio.sleep(0.2)
    finally:
        await hub.stop()
    # The pixel, then the first content link; never the unsubscribe link, never off the host;
    # the redirect was not followed; the second message (share 0) was not read.
    assert [path for path, _ in seen] == ["/o/tok.gif", "/c/tok"]
    assert all("sandbox mail reader" in agent for _, agent in seen)
    counters = await control.counters()
    assert counters["opened"]["by_recipient"] == {"reader@example.jp": 1}
    assert counters["clicked"]["by_recipient"] == {"reader@example.jp": 1}


async def test_address_parse_is_aiosmtpd_own(reference_dir: Path) -> None:
    """`SandboxSMTP._getaddr` (memoised, without aiosmtpd's per-call class) answers exactly
    as aiosmtpd's for every address of the isemail suite, bare, in brackets, with params."""
    theirs, ours = SMTP(handler=None), SandboxSMTP(handler=None)
    addresses = [address for _, address, _, _ in isemail_cases(reference_dir)]
    for suite in ("email", "idn-email"):
        path = reference_dir / "email" / f"jsonschema-testsuite_{suite}.json"
        addresses += [str(c["data"]) for g in json.loads(path.read_text()) for c in g["tests"]]
    addresses += ["taro.yamada+city@example.jp", "o'brien@example.com", "a" * 65 + "@ex.jp"]
    forms = ("{}", "<{}>", "<{}> SIZE=10", " <{}", "<{}>SIZE=1", "<{}>\tBODY=8BITMIME")
    forms += ("<{}>  (comment) SIZE=1", "<{}> \u3000 SIZE=1")
    args = [form.format(a) for a in addresses for form in forms]
    assert len(args) > 1500
    for arg in [*args, "", "<>", "<", "<" + "a" * 70 + "@example.jp>"]:
        assert _outcome(ours._getaddr, arg) == _outcome(theirs._getaddr, arg), arg
    # Not a vacuous pass: most of them took the quick read of plain addresses.
    assert sum(_PLAIN_ANGLE_ADDR.fullmatch(arg) is not None for arg in args) > 250


def _outcome(parse: Callable[[str], object], arg: str) -> object:
    try:
        return parse(arg)
    except Exception as exc:  # aiosmtpd lets IndexError out of "<" (its handler answers 500)
        return type(exc)
