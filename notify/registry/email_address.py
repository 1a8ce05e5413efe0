"""Email address checks for the sign-up form: the verdict a receiving mail server would give.

A mail server takes an address in `RCPT TO:<…>`, so the yardstick is RFC 5321's Mailbox
(plus RFC 6531 SMTPUTF8 for international addresses), not RFC 5322's broader header syntax.
The syntax work is done by `email-validator` (IDNA 2008, quoted local parts, lengths); this
module adds the policy below and bilingual messages. Verdicts per isemail category
(../shared/reference/email/isemail_tests.xml; every case is tested):

- VALID: accept.
- DNSWARN (no MX / no record): accept; no DNS at sign-up, the double opt-in mail proves
  delivery.
- RFC5321 quoted local part (`"a b"@x.jp`): accept, legal in RCPT TO; stored unquoted when it
  can be (`"test"@x.jp` → `test@x.jp`). The empty one (`""@x.jp`) is refused: no mailbox is
  named "".
- RFC5321 address literal (`a@[1.2.3.4]`): **reject**. No resident's mailbox is an IP, and it
  would let anyone make the city's relay connect to any host.
- RFC5321 numeric TLD (`a@iana.123`, `a@1.2.3.4`): reject; no TLD is all-numeric (RFC 3696
  §2) and a bare IP is not a domain.
- RFC5321 dotless domain (`a@org`; isemail calls `a@io` VALID): reject; no mailbox lives at a
  TLD, and it is usually a typo (`taro@gmail`).
- CFWS (comments, folding white space): reject; header syntax, never valid in an envelope.
- DEPREC (obsolete forms): reject; RFC 5321 does not carry RFC 822's obsolete syntax.
- RFC5322 (too long, general domain literals, bad IPv6): reject; invalid for SMTP (local
  part ≤ 64 octets as typed, address ≤ 254).
- ERR: reject.

Form conventions on top: blanks around the input (ASCII, tab, full-width space) are trimmed,
as every form does, so `' a@x.jp'` is `a@x.jp`; a CR, LF or any other control character
anywhere is refused (header injection). JSON-Schema `email` / `idn-email` suite: every case
gets its `valid` verdict except IP address literals (policy above), the C1 control U+0085
(NEL: Python's `splitlines` breaks a header line on it) and noncharacters such as U+FFFF
(RFC 6530 §10.1 advises against control and unassigned code points). A full-width ＠ and
other full-width ASCII (ＡＢＣ１２３) get a message saying so, in Japanese first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from notify.errors import InvalidInput

MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
_TRIM = " \t\u3000"
_FULLWIDTH_ASCII = re.compile("[\uff01-\uff5e]")
_BAD_QUOTED_PAIR = re.compile(r"\\[^\x20-\x7e]")  # quoted-pairSMTP is %d92 %d32-126


@dataclass(frozen=True, slots=True)
class EmailAddress:
    address: str  # canonical form to store and send to (ASCII domain when possible)
    smtputf8: bool  # the local part is not ASCII: the relay must offer SMTPUTF8


class InvalidEmail(InvalidInput):
    """An address a mail server would refuse; `reason` is the bilingual explanation."""

    def __init__(self, reason: str, *, field: str = "email") -> None:
        super().__init__(
            "メールアドレスが正しくありません / invalid email address", fields={field: reason}
        )
        self.reason = reason


def check_email(raw: str, *, field: str = "email") -> EmailAddress:
    """Return the canonical address or raise InvalidEmail with a field-level message."""
    text = raw.strip(_TRIM)
    _precheck(text, field)
    try:
        result = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=True,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
            globally_deliverable=True,
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(_explain(text, str(exc)), field=field) from exc
    local, _, domain = result.normalized.rpartition("@")
    typed_local = text.rpartition("@")[0]  # as typed: a needless `\\h` still counts (isemail)
    if max(len(local.encode()), len(typed_local.encode())) > MAX_LOCAL_OCTETS:
        raise InvalidEmail(
            f"@ の前が長すぎます（{MAX_LOCAL_OCTETS}バイトまで） / the part before @ is too long",
            field=field,
        )
    if re.fullmatch(r"[0-9]+", domain.rsplit(".", 1)[-1]):
        raise InvalidEmail(
            "ドメインの末尾が数字だけです / the domain cannot end in a numeric label",
            field=field,
        )
    canonical = result.ascii_email or f"{local}@{result.ascii_domain}"
    return EmailAddress(address=canonical, smtputf8=result.ascii_email is None)


def _precheck(text: str, field: str) -> None:
    if "＠" in text:
        raise InvalidEmail(
            "全角の＠が使われています。半角の @ で入力してください"
            " / a full-width ＠ was used: please type the ASCII @",
            field=field,
        )
    if _FULLWIDTH_ASCII.search(text):
        raise InvalidEmail(
            "全角の英数字・記号が含まれています。半角で入力してください"
            " / full-width letters or symbols: please type them half-width",
            field=field,
        )
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp") or _noncharacter(ch):
            raise InvalidEmail(
                f"使えない文字が含まれています（U+{ord(ch):04X}）"
                f" / the address contains a control or invalid character (U+{ord(ch):04X})",
                field=field,
            )
    if _BAD_QUOTED_PAIR.search(text):
        raise InvalidEmail(
            "バックスラッシュの後に使えない文字があります / invalid character after a backslash",
            field=field,
        )


def _noncharacter(ch: str) -> bool:
    code = ord(ch)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _explain(text: str, detail: str) -> str:
    """email-validator's English reason, with a Japanese summary first."""
    if "@" not in text:
        ja = "@ がありません"
    elif re.search(r"@\s*\[", text):
        ja = "IP アドレス形式のドメインは使えません"
    elif "should have a period" in detail:
        ja = "ドメインにドット（.）がありません"
    elif "too long" in detail:
        ja = "長すぎます"
    else:
        ja = "メールアドレスの形式ではありません"
    return f"{ja} / {detail}"
