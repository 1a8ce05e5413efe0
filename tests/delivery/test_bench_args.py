"""`python -m bench fanout --channels`: a misspelt channel is a CLI message, not a benchmark
of a broadcast that reaches nobody."""

from __future__ import annotations

from typing import Any

import pytest

from bench.fanout import limit_ratios, parse_args


def test_channels_are_read_as_a_list() -> None:
    assert parse_args(["--channels", "line, email"]).channels == ["line", "email"]
    assert parse_args([]).channels == ["line", "fcm", "email"]


@pytest.mark.parametrize("value", ["sms", "line,push", ","])
def test_an_unknown_channel_is_refused_with_the_known_ones(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--channels", value])
    assert exited.value.code == 2
    assert "expected a comma-separated list of line, fcm, email" in capsys.readouterr().err


def _channels(**recipients: int) -> dict[str, Any]:
    return {
        "channels": {
            name: {"recipients": recipients.get(name, 0), "span_s": 10.0}
            for name in ("line", "fcm", "email")
        }
    }


def test_limit_ratios_of_an_email_only_send_have_no_bound() -> None:
    # SMTP has no provider limit here: `--channels email --real-limits` once ended in a
    # ZeroDivisionError traceback instead of its JSON line.
    ratios = limit_ratios(_channels(email=1000), 1.0, 12.0)
    assert ratios["limit_ratio"] is None and ratios["limit_ratio_per_channel"] == {}
    fcm_only = limit_ratios(_channels(fcm=100_000), 1.0, 12.0)
    assert fcm_only["limit_bound_s"] == 10.0 and fcm_only["limit_ratio"] == 1.2
