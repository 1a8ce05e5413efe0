"""The per-batch fast MIME path produces what Python's email package produces."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest

from channels.base import EmailMessage
from channels.email_mime import (
    MailTemplate,
    Sender,
    _base64_lines,
    build_email,
    checked_unsubscribe_url,
    is_plain_address,
)
from notify.errors import InvalidInput

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SENDER = Sender("info@city.example.jp", "川崎市 市民文化局", "bounces@city.example.jp", "news.city")
HTML = (
    '<html><body><p>詳細は<a href="https://example.jp/a?x=1&amp;y=2">こちら</a></p>'
    "<p>長い行" + "あ" * 300 + "</p></body></html>"
)
MESSAGES = [
    EmailMessage("【川崎市】お知らせ：" + "長い件名" * 20, "一行目\n二行目\r\n三行目", HTML),
    EmailMessage("Plain subject", "text only\n"),
]
EXTRAS = [
    {},
    {"unsubscribe_url": "https://c.example.jp/u/AbC-12_x"},
    {
        "unsubscribe_url": "http://127.0.0.1:8080/u/AbC",
        "click_url_prefix": "https://c.example.jp/c/T?u=",
        "open_pixel_url": "https://c.example.jp/o/T.gif",
    },
]


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def summary(raw: bytes) -> dict:
    mail = parse(raw)
    headers = {k: str(v) for k, v in mail.items() if k not in ("Message-ID", "Content-Type")}
    parts = [mail] if not mail.is_multipart() else list(mail.iter_parts())
    bodies = [
        (p.get_content_type(), p["Content-Transfer-Encoding"], p.get_content()) for p in parts
    ]
    return {"headers": headers, "type": mail.get_content_type(), "bodies": bodies}


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("extra", EXTRAS)
def test_fast_path_equals_the_email_package(message: EmailMessage, extra: dict) -> None:
    template = MailTemplate(message, SENDER, broadcast_id=5, now=NOW)
    fast, fast_id = template.render("hanako@example.jp", extra, endpoint_id=9)
    slow, _ = build_email(
        message, "hanako@example.jp", extra, SENDER, broadcast_id=5, endpoint_id=9, now=NOW
    )
    assert summary(fast) == summary(slow)
    assert parse(fast)["Message-ID"] == fast_id and fast_id.endswith(".e9@city.example.jp>")
    assert all(len(line) <= 78 for line in fast.split(b"\r\n"))
    assert b"\n" not in fast.replace(b"\r\n", b"")  # CRLF only


def test_message_ids_are_unique_per_recipient_and_batch() -> None:
    first = MailTemplate(MESSAGES[1], SENDER, broadcast_id=5)
    second = MailTemplate(MESSAGES[1], SENDER, broadcast_id=5)  # a retry of the same batch
    ids = {first.render("a@example.jp", {}, endpoint_id=n)[1] for n in range(3)}
    ids.add(second.render("a@example.jp", {}, endpoint_id=0)[1])
    assert len(ids) == 4


@pytest.mark.parametrize("address", ['"taro yamada"@example.jp', "市民@例え.jp"])
def test_unusual_addresses_take_the_reference_path(address: str) -> None:
    raw, _ = MailTemplate(MESSAGES[1], SENDER, broadcast_id=1).render(address, {}, endpoint_id=1)
    assert f"\r\nTo: {address}\r\n".encode() in raw  # as UTF-8 (SMTPUTF8), not encoded


@pytest.mark.parametrize(
    "address", ["a@example.jp\n", "a@example.jp\r\nRCPT TO:<b@x.jp>", "<a@x.jp>"]
)
def test_only_a_bare_address_is_plain(address: str) -> None:
    # A plain address goes on the SMTP command line as it is (EmailChannel._transfer):
    # not even a trailing newline may pass, which `re.match` with `$` would let through.
    assert is_plain_address("a@example.jp") and not is_plain_address(address)


def test_header_injection_is_impossible() -> None:
    template = MailTemplate(MESSAGES[1], SENDER, broadcast_id=1)
    with pytest.raises(ValueError):
        template.render("a@example.jp\r\nBcc: victim@example.jp", {}, endpoint_id=1)
    with pytest.raises(InvalidInput):
        template.render("a@example.jp", {"unsubscribe_url": "https://x/u\r\nBcc: v"}, endpoint_id=1)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "https://c.example.jp/u/<script>", "https://c.jp/u/\u00e9"]
)
def test_unsubscribe_urls_are_plain(url: str) -> None:
    with pytest.raises(InvalidInput):
        checked_unsubscribe_url(url)


def test_tracking_values_are_escaped_in_html() -> None:
    extra = {"click_url_prefix": 'https://c.jp/c/"><script>?u=', "open_pixel_url": 'x"onload="y'}
    raw, _ = MailTemplate(MESSAGES[0], SENDER, broadcast_id=1).render(
        "a@x.jp", extra, endpoint_id=1
    )
    html = parse(raw).get_body(("html",)).get_content()
    assert "<script>" not in html and 'onload="' not in html


LINKED_HTML = [
    # several links, one whose target holds "</body>" (quoted away once rewritten)
    '<html><body><p><a href="https://a.example/x?q=</body>">a</a> と '
    "<A HREF='https://b.example/y'>b</A></p>" + "い" * 200 + "</body></html>",
    # no </body> at all: the footer goes at the end
    '<p><a href="https://a.example/">a</a></p>' + "う" * 100,
    # a first link after more than one base64 line of shared beginning
    "<html><body>" + "え" * 100 + '<a href="https://a.example/&amp;z">z</a></body></html>',
    "",
]


@pytest.mark.parametrize("body_html", LINKED_HTML)
def test_one_template_renders_each_recipient_as_the_email_package(body_html: str) -> None:
    """The template cuts the HTML and encodes the shared beginning once; recipients with
    different links, footers or none must still get what `build_email` makes."""
    message = EmailMessage("件名", "本文です。\n" * 30 + "  \n", body_html)
    template = MailTemplate(message, SENDER, broadcast_id=5, now=NOW)
    for n, extra in enumerate([*EXTRAS, {"click_url_prefix": "https://c.example.jp/c/Z?u="}]):
        fast, _ = template.render(f"r{n}@example.jp", extra, endpoint_id=n)
        slow, _ = build_email(
            message, f"r{n}@example.jp", extra, SENDER, broadcast_id=5, endpoint_id=n, now=NOW
        )
        assert summary(fast) == summary(slow)
        assert all(len(line) <= 78 for line in fast.split(b"\r\n"))


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 114, 1000])
def test_base64_lines_are_those_of_the_email_package(size: int) -> None:
    data = bytes(range(256)) * 4
    assert _base64_lines(data[:size]) == base64.encodebytes(data[:size]).replace(b"\n", b"\r\n")
