"""Every case of the isemail and JSON-Schema suites gets the documented mail-server verdict."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from notify.registry.email_address import InvalidEmail, check_email

# isemail verdicts that our policy (notify/registry/email_address.py) decides differently
# from "accept VALID, DNSWARN and RFC 5321 quoted strings; refuse everything else".
ISEMAIL_EXCEPTIONS = {
    "5": False,  # test@io: dotless domain
    "43": False,  # ""@iana.org: empty quoted local part
    "157": True,  # ' test@iana.org': blanks around form input are trimmed
    "158": True,  # 'test@iana.org ': same
}
# JSON-Schema suite cases where policy differs from the suite's `valid`.
JSON_SCHEMA_EXCEPTIONS = {
    "joe.bloggs@[127.0.0.1]": False,  # IP address literal
    "joe.bloggs@[IPv6:::1]": False,  # IP address literal
    "\x85@example.com": False,  # C1 control NEL
    "\uffff@example.com": False,  # noncharacter
}


def _controls(text: str) -> str:
    """isemail writes control characters as U+2400 + code (its notes, point 1)."""
    return "".join(chr(ord(c) - 0x2400) if 0x2400 <= ord(c) < 0x2420 else c for c in text)


def isemail_cases(reference: Path) -> list[tuple[str, str, str, bool]]:
    root = ET.parse(reference / "email" / "isemail_tests.xml").getroot()
    cases = []
    for test in root.findall("test"):
        test_id = test.get("id") or ""
        address = _controls(test.findtext("address") or "")
        category = test.findtext("category") or ""
        diagnosis = test.findtext("diagnosis") or ""
        accept = category in ("ISEMAIL_VALID_CATEGORY", "ISEMAIL_DNSWARN") or (
            diagnosis == "ISEMAIL_RFC5321_QUOTEDSTRING"
        )
        cases.append((test_id, address, diagnosis, ISEMAIL_EXCEPTIONS.get(test_id, accept)))
    return cases


def verdict(address: str) -> bool:
    try:
        check_email(address)
    except InvalidEmail as exc:
        assert exc.status == 422 and exc.fields["email"]
        assert " / " in exc.reason  # Japanese first, then English
        return False
    return True


def test_every_isemail_case(reference_dir: Path) -> None:
    cases = isemail_cases(reference_dir)
    assert len(cases) == 164
    wrong = [
        (test_id, address, diagnosis, expected)
        for test_id, address, diagnosis, expected in cases
        if verdict(address) != expected
    ]
    assert wrong == []
    accepted = sum(expected for *_, expected in cases)
    assert accepted == 28  # 13 VALID + 8 DNSWARN + 5 quoted strings + 2 trimmed


@pytest.mark.parametrize("suite", ["email", "idn-email"])
def test_every_json_schema_case(reference_dir: Path, suite: str) -> None:
    groups = json.loads(
        (reference_dir / "email" / f"jsonschema-testsuite_{suite}.json").read_text()
    )
    checked = 0
    wrong = []
    for group in groups:
        for case in group["tests"]:
            if not isinstance(case["data"], str):
                continue  # "all string formats ignore integers" etc.: not addresses
            expected = JSON_SCHEMA_EXCEPTIONS.get(case["data"], case["valid"])
            checked += 1
            if verdict(case["data"]) != expected:
                wrong.append((case["description"], case["data"], expected))
    assert wrong == []
    assert checked >= 12


def test_full_width_at_sign_is_named() -> None:
    with pytest.raises(InvalidEmail) as info:
        check_email("taro＠example.jp")
    assert info.value.reason.startswith("全角の＠")
    with pytest.raises(InvalidEmail) as info:
        check_email("ｔａｒｏ@example.jp")
    assert "全角" in info.value.reason


@pytest.mark.parametrize(
    ("typed", "stored", "smtputf8"),
    [
        ("  Taro.Yamada@Example.JP\u3000", "Taro.Yamada@example.jp", False),
        ('"test"@iana.org', "test@iana.org", False),
        ('"joe bloggs"@example.com', '"joe bloggs"@example.com', False),
        ("test@xn--hxajbheg2az3al.xn--jxalpdlp", "test@xn--hxajbheg2az3al.xn--jxalpdlp", False),
        ("user@café.com", "user@xn--caf-dma.com", False),
        ("실례@실례.테스트", "실례@xn--9n2bp8q.xn--9t4b11yi5a", True),
        ("山田@example.jp", "山田@example.jp", True),
    ],
)
def test_canonical_form_for_storage_and_sending(typed: str, stored: str, smtputf8: bool) -> None:
    result = check_email(typed)
    assert (result.address, result.smtputf8) == (stored, smtputf8)


def test_header_injection_attempts_are_refused() -> None:
    for hostile in ("a@example.jp\r\nBcc: b@example.jp", "a@example.jp\nX: y", "a\x00@example.jp"):
        assert not verdict(hostile)
