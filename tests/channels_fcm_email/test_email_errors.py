"""Every aiosmtplib error is mapped, and SMTP replies are read as RFC 5321 / 3463 say."""

from __future__ import annotations

import inspect

import aiosmtplib
import pytest
from aiosmtplib import errors as smtp_errors

from channels.base import Outcome
from channels.email_errors import classify_reply, classify_smtp_error, is_connection_lost


@pytest.mark.parametrize(
    ("code", "text", "stage", "outcome", "prune"),
    [
        (550, "5.1.1 <x@example.jp>: User unknown", "RCPT", Outcome.PERMANENT, True),
        (550, "5.1.10 Null MX", "RCPT", Outcome.PERMANENT, True),
        (550, "Mailbox unavailable", "RCPT", Outcome.PERMANENT, True),
        (550, "5.2.1 Mailbox disabled", "RCPT", Outcome.PERMANENT, True),
        (552, "5.2.2 Mailbox full", "RCPT", Outcome.TRANSIENT, False),
        (550, "5.7.1 Relaying denied", "RCPT", Outcome.PERMANENT, False),
        (554, "5.7.1 Message rejected as spam", "DATA", Outcome.PERMANENT, False),
        (553, "5.3.4 Message too big for system", "RCPT", Outcome.PERMANENT, False),
        (451, "4.3.0 Try again later", "RCPT", Outcome.TRANSIENT, False),
        (421, "4.7.0 Too many connections", "SESSION", Outcome.TRANSIENT, False),
        (550, "5.1.8 Bad sender address", "MAIL", Outcome.PERMANENT, False),
    ],
)
def test_replies(code: int, text: str, stage: str, outcome: Outcome, prune: bool) -> None:
    result = classify_reply(code, text, stage=stage)
    assert (result.outcome, result.prune) == (outcome, prune)
    assert result.error_code == f"SMTP_{code}"


def _instance(cls: type) -> BaseException:
    """Build one instance of each aiosmtplib error with arguments its constructor names."""
    values = {
        "code": 451, "message": "4.3.0 busy", "sender": "a@example.jp",
        "recipient": "b@example.jp",
        "recipients": [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "b@example.jp")],
    }  # fmt: skip
    params = [p for p in inspect.signature(cls).parameters.values() if p.default is p.empty]
    return cls(*(values[p.name] for p in params))


ERRORS = sorted(
    {
        obj
        for _, obj in inspect.getmembers(smtp_errors, inspect.isclass)
        if issubclass(obj, aiosmtplib.SMTPException)
    },
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("error_type", ERRORS, ids=lambda c: c.__name__)
def test_every_aiosmtplib_error_is_mapped(error_type: type) -> None:
    exc = _instance(error_type)
    result = classify_smtp_error(exc)
    assert result.error_code != "UNEXPECTED"
    assert result.outcome in (Outcome.PERMANENT, Outcome.TRANSIENT)
    is_connection_lost(exc)  # never raises


def test_the_aiosmtplib_error_list_is_complete() -> None:
    assert len(ERRORS) >= 14  # SMTPException and its 13 subclasses in aiosmtplib 5


def test_other_failures() -> None:
    assert classify_smtp_error(ValueError("bad address")).prune
    assert classify_smtp_error(ConnectionResetError()).error_code == "NETWORK"
    assert classify_smtp_error(TimeoutError()).error_code == "TIMEOUT"
    assert is_connection_lost(aiosmtplib.SMTPServerDisconnected("gone"))
    assert is_connection_lost(aiosmtplib.SMTPResponseException(421, "closing"))
    assert not is_connection_lost(aiosmtplib.SMTPRecipientRefused(550, "x", "b@example.jp"))
