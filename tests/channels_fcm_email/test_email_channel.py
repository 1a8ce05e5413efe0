"""The email adapter against the SMTP sandbox: the bytes that left, and one result each."""

from __future__ import annotations

import json
import socket
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from channels.base import EmailMessage, Outcome, Recipient, SendContext
from channels.email import EmailChannel
from notify.errors import InvalidInput, PermanentChannelError, TransientChannelError
from sandbox.smtp import SmtpSandbox

from .list_unsubscribe import classify

MESSAGE = EmailMessage(
    subject="【川崎市】乳幼児健診のお知らせ",
    text="健診の日程が決まりました。\n詳しくは https://www.city.kawasaki.jp/kenshin へ。",
    html=(
        "<html><body><p>健診の日程が決まりました。</p>"
        '<p><a href="https://www.city.kawasaki.jp/kenshin?a=1&amp;b=2">詳しく</a> / '
        "<a href='mailto:info@city.example.jp'>問い合わせ</a></p></body></html>"
    ),
)
CONTEXT = SendContext(broadcast_id=42)
EXTRA = {
    "unsubscribe_url": "https://c.example.jp/u/Zx81kQ2mN0aB",
    "click_url_prefix": "https://c.example.jp/c/Tk3?u=",
    "open_pixel_url": "https://c.example.jp/o/Tk3.gif",
}


@pytest.fixture(
    params=[(True, True), (True, False), (False, False)],
    ids=["chunking", "pipelining", "one-by-one"],
)
def smtp(smtp: SmtpSandbox, request: pytest.FixtureRequest) -> SmtpSandbox:
    """Every test here against a server that offers PIPELINING and CHUNKING (BDAT), one that
    offers PIPELINING only, and one that offers neither."""
    smtp.state.limits["pipelining"], smtp.state.limits["chunking"] = request.param
    return smtp


def residents(*addresses: str, extra: dict[str, str] | None = None) -> list[Recipient]:
    return [
        Recipient(endpoint_id=100 + i, address=a, extra=extra if extra is not None else EXTRA)
        for i, a in enumerate(addresses)
    ]


def make_channel(smtp: SmtpSandbox, **kwargs) -> EmailChannel:
    return EmailChannel(
        host=smtp.host,
        port=smtp.port,
        mail_from="info@city.example.jp",
        from_name="川崎市",
        envelope_from="bounces@city.example.jp",
        timeout_s=kwargs.pop("timeout_s", 5),
        **kwargs,
    )


async def raw_messages(smtp_control, session, recipient: str) -> list[bytes]:
    base = smtp_control._base  # the sandbox's control URL
    async with session.get(base + "smtp/messages", params={"recipient": recipient}) as response:
        summaries = (await response.json())["messages"]
    out = []
    for summary in summaries:
        async with session.get(f"{base}smtp/messages/{summary['id']}/raw") as response:
            out.append(await response.read())
    return out


async def test_the_bytes_that_leave(smtp, smtp_control, session, reference_dir: Path) -> None:
    results = await make_channel(smtp).send_batch(residents("taro@example.jp"), MESSAGE, CONTEXT)
    assert results[0].outcome is Outcome.SENT and results[0].provider_id
    (raw,) = await raw_messages(smtp_control, session, "taro@example.jp")
    head = raw.split(b"\r\n\r\n", 1)[0]
    # Byte-exact, one line each: no RFC 2047 encoding, no folding.
    assert b"\r\nList-Unsubscribe: <https://c.example.jp/u/Zx81kQ2mN0aB>\r\n" in head
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    verdict = classify(mail["List-Unsubscribe"], mail["List-Unsubscribe-Post"])
    assert (verdict.kind, verdict.url) == ("OneClick", EXTRA["unsubscribe_url"])
    assert mail["Subject"] == MESSAGE.subject
    assert mail["From"].addresses[0].display_name == "川崎市"
    assert mail["Message-ID"] == results[0].provider_id
    assert (mail["X-Broadcast-Id"], mail["X-Endpoint-Id"]) == ("42", "100")
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "健診の日程" in text and EXTRA["unsubscribe_url"] in text
    assert (
        'href="https://c.example.jp/c/Tk3?u=https%3A%2F%2Fwww.city.kawasaki.jp%2Fkenshin'
        '%3Fa%3D1%26b%3D2"' in html
    )
    assert "href='mailto:info@city.example.jp'" in html  # only http(s) links are tracked
    assert html.index('<img src="https://c.example.jp/o/Tk3.gif"') < html.index("</body>")
    assert f'href="{EXTRA["unsubscribe_url"]}"' in html  # the footer link is not tracked


def test_the_receiver_reading_agrees_with_the_conformance_corpus(reference_dir: Path) -> None:
    cases = sorted((reference_dir / "email" / "list-unsubscribe-conformance").glob("*.json"))
    cases = [c for c in cases if c.name != "schema.json"]
    assert len(cases) >= 14 and any(c.name.startswith("rfc8058-") for c in cases)
    for case in cases:
        data = json.loads(case.read_text())
        got = classify(
            data["input"]["list_unsubscribe"], data["input"].get("list_unsubscribe_post")
        )
        expected = data["expected"]
        assert got.kind == expected["kind"], case.name
        for key in ("url", "address", "subject"):
            if key in expected:
                assert getattr(got, key) == expected[key], case.name


async def test_plain_http_gets_no_one_click(smtp, smtp_control, session) -> None:
    extra = {"unsubscribe_url": "http://127.0.0.1:8080/u/Zx81kQ2mN0aB"}
    await make_channel(smtp).send_batch(residents("a@example.jp", extra=extra), MESSAGE, CONTEXT)
    (raw,) = await raw_messages(smtp_control, session, "a@example.jp")
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail["List-Unsubscribe-Post"] is None
    assert classify(mail["List-Unsubscribe"], None).kind == "HttpLink"


async def test_a_too_long_unsubscribe_url_is_refused_before_sending(smtp, smtp_control) -> None:
    extra = {"unsubscribe_url": "https://city.example.jp/unsubscribe?address=" + "x" * 40}
    with pytest.raises(InvalidInput, match="too long"):
        await make_channel(smtp).send_batch(
            residents("a@example.jp", extra=extra), MESSAGE, CONTEXT
        )
    assert await smtp_control.counters() == {}


async def test_text_only_and_no_tracking(smtp, smtp_control, session) -> None:
    message = EmailMessage(subject="テキストのみ", text="本文")
    await make_channel(smtp).send_batch(residents("t@example.jp", extra={}), message, CONTEXT)
    (raw,) = await raw_messages(smtp_control, session, "t@example.jp")
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail.get_content_type() == "text/plain" and mail["List-Unsubscribe"] is None
    assert mail.get_content().strip() == "本文"


async def test_one_connection_per_batch_and_results_in_order(smtp, smtp_control) -> None:
    await smtp_control._call(
        "POST", "smtp/bounces", json={"hard": ["gone@example.jp", "@dead.example"]}
    )
    addresses = [
        "a@example.jp",
        "gone@example.jp",
        "b@example.jp",
        "x@dead.example",
        "c@example.jp",
    ]
    results = await make_channel(smtp).send_batch(residents(*addresses), MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code, r.prune) for r in results] == [
        (Outcome.SENT, None, False),
        (Outcome.PERMANENT, "SMTP_550", True),
        (Outcome.SENT, None, False),
        (Outcome.PERMANENT, "SMTP_550", True),
        (Outcome.SENT, None, False),
    ]
    counters = await smtp_control.counters()
    assert counters["connections"]["total"] == 1
    assert counters["delivered"]["by_recipient"] == {a: 1 for a in addresses[::2]}


async def test_striped_connections(smtp, smtp_control) -> None:
    addresses = [f"r{i}@example.jp" for i in range(10)]
    results = await make_channel(smtp, connections=3).send_batch(
        residents(*addresses), MESSAGE, CONTEXT
    )
    assert all(r.outcome is Outcome.SENT for r in results)
    counters = await smtp_control.counters()
    assert counters["connections"]["total"] == 3
    assert counters["delivered"]["by_recipient"] == {a: 1 for a in addresses}


async def test_ehlo_says_the_configured_name_or_this_machines(smtp) -> None:
    await make_channel(smtp, helo_name="mail1.city.example.jp", connections=2).send_batch(
        residents("a@example.jp", "b@example.jp"), MESSAGE, CONTEXT
    )
    await make_channel(smtp).send_batch(residents("c@example.jp"), MESSAGE, CONTEXT)
    assert [m.summary()["helo"] for m in smtp.mailbox.messages] == [
        "mail1.city.example.jp",
        "mail1.city.example.jp",
        socket.getfqdn(),
    ]


async def test_temporary_failures_are_transient(smtp, smtp_control) -> None:
    # Refused at RCPT: with PIPELINING the DATA sent along is refused too, and the
    # session is reset for the next message.
    await smtp_control.faults(error_share=1.0, paths=["RCPT"])
    results = await make_channel(smtp).send_batch(
        residents("a@example.jp", "b@example.jp"), MESSAGE, CONTEXT
    )
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.TRANSIENT, "SMTP_451")] * 2


async def test_a_hung_server_times_out_and_the_next_message_reconnects(smtp, smtp_control) -> None:
    await smtp_control.faults(timeout_share=1.0, hang_s=5, paths=["DATA"])
    channel = make_channel(smtp, timeout_s=0.4)
    results = await channel.send_batch(residents("a@example.jp", "b@example.jp"), MESSAGE, CONTEXT)
    assert [(r.outcome, r.error_code) for r in results] == [(Outcome.TRANSIENT, "TIMEOUT")] * 2
    # Under CHUNKING b left in a's write and is as unsure as a: no second connection.
    connections = 1 if smtp.state.limits["chunking"] else 2
    assert (await smtp_control.counters("connections"))["connections"]["total"] == connections


async def test_unreachable_server_fails_the_whole_call() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = EmailChannel(host="127.0.0.1", port=port, mail_from="a@example.jp", timeout_s=1)
    with pytest.raises(TransientChannelError):
        await channel.send_batch(residents("a@example.jp"), MESSAGE, CONTEXT)


async def test_login() -> None:
    sandbox = SmtpSandbox(credentials=("hub", "s3cret"))
    await sandbox.start()
    try:
        wrong = make_channel(sandbox, username="hub", password="nope")
        with pytest.raises(PermanentChannelError, match="login refused"):
            await wrong.send_batch(residents("a@example.jp"), MESSAGE, CONTEXT)
        right = make_channel(sandbox, username="hub", password="s3cret")
        results = await right.send_batch(residents("a@example.jp"), MESSAGE, CONTEXT)
        assert results[0].outcome is Outcome.SENT
    finally:
        await sandbox.stop()


async def test_an_internationalised_address_uses_smtputf8(smtp) -> None:
    results = await make_channel(smtp).send_batch(residents("市民@例え.jp"), MESSAGE, CONTEXT)
    assert results[0].outcome is Outcome.SENT
    assert smtp.state.counters.get("delivered", "市民@例え.jp") == 1


async def test_limits_are_declared() -> None:
    assert EmailChannel.max_batch >= 200 and EmailChannel.supports_title
    with pytest.raises(InvalidInput):
        await EmailChannel(host="127.0.0.1", port=1, mail_from="a@example.jp").send_batch(
            residents(*["a@example.jp"] * 501), MESSAGE, CONTEXT
        )


async def test_a_hang_on_a_reused_connection_times_out_within_the_message_deadline(
    smtp, smtp_control
) -> None:
    # Seeded: the first two DATA commands pass, the third hangs. One deadline per message
    # (channels.smtp_session has no per-reply timeouts).
    await smtp_control.faults(timeout_share=0.5, hang_s=5, paths=["DATA"], seed=0)
    started = time.monotonic()
    results = await make_channel(smtp, timeout_s=0.4).send_batch(
        residents(*(f"r{i}@example.jp" for i in range(5))), MESSAGE, CONTEXT
    )
    assert time.monotonic() - started < 3  # not the server's 5 s hang
    codes = [r.error_code or "sent" for r in results]
    if smtp.state.limits["chunking"]:
        # The messages after the hung one had left in the same write: unsure, not resent.
        assert codes == ["sent", "sent", "TIMEOUT", "TIMEOUT", "TIMEOUT"]
        assert (await smtp_control.counters("connections"))["connections"]["total"] == 1
        return
    assert codes == ["sent", "sent", "TIMEOUT", "TIMEOUT", "sent"]
    assert (await smtp_control.counters("connections"))["connections"]["total"] == 3
