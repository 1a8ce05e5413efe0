"""`python -m bench fanout --channels`: a misspelt channel is a CLI message, not a benchmark
of a broadcast that reaches nobody."""

from __future__ import annotations

import pytest

from bench.fanout import parse_args


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
