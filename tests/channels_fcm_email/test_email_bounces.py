"""Bounce / complaint reading against real messages, and against the sandbox's own DSN."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from channels.base import EmailMessage, Outcome, Recipient, SendContext
from channels.email import EmailChannel
from channels.email_bounces import MAX_BOUNCE_BYTES, classify, parse_bounce

# Verdicts read by hand from each message (sisimai's set-of-emails).
EXPECTED = {
    "arf-01.eml": ("complaint", "redacted@example.net"),
    "lhost-amazonses-01.eml": ("hard", "shironeko@example.co.jp"),
    "lhost-ezweb-01.eml": ("hard", "this-message-rejected-by-the-domain-filter@ezweb.ne.jp"),
    "lhost-gmail-01.eml": ("hard", "userunknown@example.jp"),
    "lhost-kddi-01.eml": ("soft", "kijitora@x0000000000000.dion.ne.jp"),
    "lhost-yahoo-01.eml": ("hard", "kijitora@example.org"),
    "rfc3464-01.eml": ("hard", "userunknown@bouncehammer.jp"),
    "rhost-nttdocomo-01.eml": ("hard", "azumakuniyuki@ntt.docomo.example.ne.jp"),
}


def test_every_reference_bounce(reference_dir: Path) -> None:
    files = sorted((reference_dir / "email" / "bounces").glob("*.eml"))
    assert {f.name for f in files} == set(EXPECTED)
    for path in files:
        bounce = parse_bounce(path.read_bytes())
        assert bounce is not None, path.name
        assert (bounce.kind, bounce.recipient) == EXPECTED[path.name], path.name
        assert bounce.prune == (bounce.kind != "soft")


def test_statuses_and_words() -> None:
    assert classify("5.1.1", "550 5.1.1 User unknown") == "hard"
    assert classify("5.2.2", "552 mailbox full") == "soft"
    assert classify("4.4.1", "connection timed out") == "soft"
    assert classify("5.7.1", "550 5.7.1 Message rejected as spam") == "soft"
    assert classify("5.7.1", "550 5.7.1 user unknown") == "hard"
    assert classify(None, "送信先のメールボックスが一杯のため") == "soft"


def test_not_a_bounce_and_oversized() -> None:
    ordinary = b"From: a@example.jp\r\nSubject: hello\r\n\r\nSee you tomorrow.\r\n"
    assert parse_bounce(ordinary) is None
    assert parse_bounce(b"X" * (MAX_BOUNCE_BYTES + 1)) is None


async def test_the_sandbox_dsn_names_the_endpoint(smtp) -> None:
    smtp.mailbox.dsn_bounces.add("moved@example.jp")
    channel = EmailChannel(
        host=smtp.host, port=smtp.port, mail_from="info@city.example.jp",
        envelope_from="bounces@city.example.jp",
    )  # fmt: skip
    results = await channel.send_batch(
        [Recipient(endpoint_id=77, address="moved@example.jp")],
        EmailMessage("件名", "本文"),
        SendContext(broadcast_id=5),
    )
    assert results[0].outcome is Outcome.SENT  # accepted now, bounced later
    for _ in range(100):
        dsns = [m for m in smtp.mailbox.messages if m.kind == "dsn"]
        if dsns:
            break
        await asyncio.sleep(0.02)
    assert dsns[0].rcpt_tos == ("bounces@city.example.jp",)
    bounce = parse_bounce(dsns[0].raw)
    assert bounce is not None
    assert (bounce.kind, bounce.recipient, bounce.status) == ("hard", "moved@example.jp", "5.1.1")
    assert (bounce.endpoint_id, bounce.broadcast_id) == (77, 5)


@pytest.mark.parametrize(
    "junk", [b"", b"\x00\xff" * 100, b"Content-Type: multipart/report\r\n\r\n"]
)
def test_junk_does_not_crash(junk: bytes) -> None:
    parse_bounce(junk)
