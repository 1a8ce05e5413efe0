"""Pure builder of one personalised email (bytes as they will cross the wire).

Per recipient, from `Recipient.extra`: `unsubscribe_url` → `List-Unsubscribe` (+ RFC 8058
`List-Unsubscribe-Post`) and a footer in both parts; `click_url_prefix` → every http(s) link of
the HTML goes through it (`prefix + quoted target`); `open_pixel_url` → a 1×1 image at the end.

Python's email generator RFC 2047-encodes a header token that does not fit one 78-character
line, which would break one-click unsubscribe; such a URL is refused here instead of sent.
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

from channels.base import EmailMessage
from notify.errors import InvalidInput

_FOLD_LIMIT = 78
_LIST_UNSUBSCRIBE = "List-Unsubscribe"
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']*)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
UNSUBSCRIBE_LABEL = "配信停止 / Unsubscribe"


@dataclass(frozen=True, slots=True)
class Sender:
    address: str  # the From address
    display_name: str = ""
    envelope_from: str = ""  # MAIL FROM (bounces go there); empty → `address`
    list_id: str = ""  # e.g. "city-news.example.jp" → List-Id: <city-news.example.jp>

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def checked_unsubscribe_url(url: str) -> str:
    """An http(s) URL that fits one header line unencoded (or InvalidInput).

    Only https gets one-click (RFC 8058); plain http is for the local demo."""
    if not url.isascii() or not re.match(r"^https?://[!-~]+$", url) or ">" in url:
        raise InvalidInput(f"unsubscribe URL must be a plain http(s) URL: {url!r}")
    if len(f"{_LIST_UNSUBSCRIBE}: <{url}>") > _FOLD_LIMIT:
        raise InvalidInput(
            f"unsubscribe URL of {len(url)} characters is too long: keep it under "
            f"{_FOLD_LIMIT - len(_LIST_UNSUBSCRIBE) - 4} (an opaque token, never the address)"
        )
    return url


def rewrite_links(body_html: str, click_url_prefix: str) -> str:
    def through(match: re.Match[str]) -> str:
        opening, quote_char = match.group(1), match.group(2)
        target = quote(html.unescape(match.group(3)), safe="")
        return f"{opening}{quote_char}{html.escape(click_url_prefix)}{target}{quote_char}"

    return _HREF.sub(through, body_html)


def _before_body_end(body_html: str, snippet: str) -> str:
    (before,), after = _cut_at_body_end([body_html])
    return before + snippet + "".join(after)


def personalise(message: EmailMessage, extra: Mapping[str, str]) -> tuple[str, str | None]:
    """→ (text, html) for one recipient."""
    unsubscribe = extra.get("unsubscribe_url")
    text = message.text
    if unsubscribe:
        text = f"{text.rstrip()}\n\n--\n{UNSUBSCRIBE_LABEL}: {unsubscribe}\n"
    body_html = message.html
    if body_html is None:
        return text, None
    if prefix := extra.get("click_url_prefix"):
        body_html = rewrite_links(body_html, prefix)
    footer = _footer(extra)
    return text, _before_body_end(body_html, footer) if footer else body_html


def _footer(extra: Mapping[str, str]) -> str:
    """The HTML's per-recipient end: the unsubscribe link and the open pixel."""
    footer = ""
    if unsubscribe := extra.get("unsubscribe_url"):
        footer += (
            '<p style="font-size:12px;color:#666666">'
            f'<a href="{html.escape(unsubscribe)}">{UNSUBSCRIBE_LABEL}</a></p>'
        )
    if pixel := extra.get("open_pixel_url"):
        footer += f'<img src="{html.escape(pixel)}" width="1" height="1" alt="">'
    return footer


def build_email(
    message: EmailMessage,
    to: str,
    extra: Mapping[str, str],
    sender: Sender,
    *,
    broadcast_id: int,
    endpoint_id: int,
    now: datetime | None = None,
) -> tuple[bytes, str]:
    """→ (the bytes for DATA, the Message-ID)."""
    smtputf8 = not to.isascii()
    mime = MimeMessage(policy=policy.SMTPUTF8 if smtputf8 else policy.SMTP)
    mime["From"] = Address(sender.display_name, addr_spec=sender.address)
    mime["To"] = to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(now or datetime.now(UTC))
    message_id = make_msgid(idstring=f"b{broadcast_id}.e{endpoint_id}", domain=sender.domain)
    mime["Message-ID"] = message_id
    if sender.list_id:
        mime["List-Id"] = f"<{sender.list_id}>"
    if unsubscribe := extra.get("unsubscribe_url"):
        mime[_LIST_UNSUBSCRIBE] = f"<{checked_unsubscribe_url(unsubscribe)}>"
        if unsubscribe.startswith("https://"):  # RFC 8058 one-click needs an HTTPS URI
            mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # Bounce reports quote these headers back: they tie a DSN to the endpoint that failed.
    mime["X-Broadcast-Id"] = str(broadcast_id)
    mime["X-Endpoint-Id"] = str(endpoint_id)
    text, body_html = personalise(message, extra)
    mime.set_content(text, charset="utf-8", cte="base64")
    if body_html is not None:
        mime.add_alternative(body_html, subtype="html", charset="utf-8", cte="base64")
    return mime.as_bytes(), message_id


_PLAIN_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)


def is_plain_address(address: str) -> bool:
    """An ASCII dot-atom address: safe as it is in a header and on an SMTP command line."""
    return _PLAIN_ADDRESS.fullmatch(address) is not None


class MailTemplate:
    """The fast path: what is the same for a whole batch is folded once by the email package;
    each recipient only adds short ASCII headers and two base64 bodies.

    `build_email` above is the reference (and the fallback for addresses that need quoting or
    SMTPUTF8); a test checks that both produce the same message.
    """

    def __init__(
        self,
        message: EmailMessage,
        sender: Sender,
        *,
        broadcast_id: int,
        now: datetime | None = None,
    ) -> None:
        self._message, self._sender, self._broadcast_id = message, sender, broadcast_id
        self._now = now or datetime.now(UTC)
        folding = policy.SMTP
        head = MimeMessage(policy=folding)
        head["From"] = Address(sender.display_name, addr_spec=sender.address)
        head["Subject"] = message.subject
        head["Date"] = format_datetime(self._now)
        self._common = b"".join(folding.fold_binary(k, v) for k, v in head.items())
        self._list_id = (
            folding.fold_binary("List-Id", f"<{sender.list_id}>") if sender.list_id else b""
        )
        self._batch_tag = f"{int(self._now.timestamp())}.{secrets.token_hex(6)}.b{broadcast_id}"
        self._boundary = f"=_hub_{secrets.token_hex(12)}"  # "_" never occurs in base64
        self._text = _TextBody(message.text)
        self._html = None if message.html is None else _HtmlBody.of(message.html)

    def render(self, to: str, extra: Mapping[str, str], *, endpoint_id: int) -> tuple[bytes, str]:
        if not is_plain_address(to):
            return build_email(
                self._message, to, extra, self._sender,
                broadcast_id=self._broadcast_id, endpoint_id=endpoint_id, now=self._now,
            )  # fmt: skip
        message_id = f"<{self._batch_tag}.e{endpoint_id}@{self._sender.domain}>"
        lines = [f"To: {to}", f"Message-ID: {message_id}"]
        if unsubscribe := extra.get("unsubscribe_url"):
            lines.append(f"{_LIST_UNSUBSCRIBE}: <{checked_unsubscribe_url(unsubscribe)}>")
            if unsubscribe.startswith("https://"):
                lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        lines += [f"X-Broadcast-Id: {self._broadcast_id}", f"X-Endpoint-Id: {endpoint_id}"]
        head = self._common + self._list_id + ("\r\n".join(lines) + "\r\n").encode("ascii")
        text = self._text.part(unsubscribe)
        if self._html is None:
            return head + b"MIME-Version: 1.0\r\n" + text, message_id
        boundary = self._boundary.encode("ascii")
        return (
            head
            + b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\""
            + boundary + b"\"\r\n\r\n--" + boundary + b"\r\n"
            + text + b"--" + boundary + b"\r\n"
            + self._html.part(extra) + b"--" + boundary + b"--\r\n",
            message_id,
        )  # fmt: skip


_LINE_BYTES = 57  # base64 lines of 76 characters carry 57 bytes each


def _canonical(content: str) -> bytes:
    return b"\r\n".join(content.encode("utf-8").splitlines()) + b"\r\n"  # RFC 2046 4.1.1


def _base64_lines(data: bytes) -> bytes:
    """What `base64.encodebytes` gives, with CRLF: one C call, then the line breaks
    (`encodebytes` calls the encoder once per 57-byte line)."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join([encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76)])


def _part_head(subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class _Base64Body:
    """A base64 part whose bodies all begin with the same bytes (the batch's content before
    the first per-recipient link or footer): the whole 57-byte lines of that beginning are
    encoded once per batch, and base64 lines do not depend on what follows them."""

    head: bytes
    common: bytes  # a multiple of 57 bytes
    common_lines: bytes = field(init=False)

    @classmethod
    def of(cls, subtype: str, beginning: bytes) -> _Base64Body:
        whole = len(beginning) - len(beginning) % _LINE_BYTES
        return cls(_part_head(subtype), beginning[:whole])

    def __post_init__(self) -> None:
        object.__setattr__(self, "common_lines", _base64_lines(self.common))

    def part(self, content: str) -> bytes:
        canonical = _canonical(content)
        if not canonical.startswith(self.common):  # never expected; correct anyway
            return self.head + _base64_lines(canonical)
        return self.head + self.common_lines + _base64_lines(canonical[len(self.common) :])


class _TextBody:
    """The text part: the message, and per recipient the unsubscribe footer."""

    def __init__(self, text: str) -> None:
        self._text, self._stripped = text, text.rstrip()
        self._body = _Base64Body.of("plain", _canonical(self._stripped))

    def part(self, unsubscribe: str | None) -> bytes:
        if not unsubscribe:
            return self._body.part(self._text)
        return self._body.part(f"{self._stripped}\n\n--\n{UNSUBSCRIBE_LABEL}: {unsubscribe}\n")


@dataclass(frozen=True, slots=True)
class _HtmlBody:
    """The HTML part cut once per batch where each recipient's own text goes: the click
    prefix of every link (`rewrite_links`) and the footer before the last `</body>`
    (`personalise`), so a recipient costs a join instead of a regex pass."""

    before: list[str]  # rewritten, up to the footer: joined with the escaped click prefix
    after: list[str]
    plain_before: str  # the same without rewriting (no click prefix)
    plain_after: str
    # Each begins with what comes before the first per-recipient text.
    body: _Base64Body
    plain_body: _Base64Body

    @classmethod
    def of(cls, body_html: str) -> _HtmlBody:
        pieces, start = [], 0
        for match in _HREF.finditer(body_html):
            opening, quote_char = match.group(1), match.group(2)
            pieces.append(body_html[start : match.start()] + opening + quote_char)
            start = match.end()
            target = quote(html.unescape(match.group(3)), safe="")
            pieces.append(target + quote_char)
        pieces.append(body_html[start:])
        # Each piece after the first begins with a quoted link target: join them back in
        # pairs so that `prefix.join(segments)` is the rewritten HTML.
        segments = [pieces[0]] + [pieces[i] + pieces[i + 1] for i in range(1, len(pieces), 2)]
        before, after = _cut_at_body_end(segments)
        (plain_before,), plain_after = _cut_at_body_end([body_html])
        return cls(
            before,
            after,
            plain_before,
            "".join(plain_after),
            _Base64Body.of("html", _canonical(before[0])),
            _Base64Body.of("html", _canonical(plain_before)),
        )

    def part(self, extra: Mapping[str, str]) -> bytes:
        footer = _footer(extra)
        if not (prefix := extra.get("click_url_prefix")):
            return self.plain_body.part(self.plain_before + footer + self.plain_after)
        escaped = html.escape(prefix)
        return self.body.part(escaped.join(self.before) + footer + escaped.join(self.after))


def _cut_at_body_end(segments: list[str]) -> tuple[list[str], list[str]]:
    """Segments before and after the last `</body>` (none: everything is before). A match
    never straddles two segments: they meet inside an attribute value, at the click prefix."""
    for index in range(len(segments) - 1, -1, -1):
        ends = [m.start() for m in _BODY_END.finditer(segments[index])]
        if ends:
            segment = segments[index]
            return (
                [*segments[:index], segment[: ends[-1]]],
                [segment[ends[-1] :], *segments[index + 1 :]],
            )
    return list(segments), []
