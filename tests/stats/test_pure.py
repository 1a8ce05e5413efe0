"""Pure parts: signed tokens, half-up rates, withheld values, link rewriting, proxies, CSV."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from notify.settings import Settings
from notify.stats import tracking
from notify.stats.csv_report import report_rows, to_csv
from notify.stats.measure import Measure, total
from notify.stats.proxies import is_privacy_proxy
from notify.stats.rates import open_rate, percent_text
from notify.stats.schemas import BroadcastSummary, figures_from
from notify.stats.signing import sign_token, verify_token

SECRET = "unit-test-secret"


@pytest.mark.parametrize(
    ("opens", "delivered", "expected"),
    [
        (1, 8, "12.5"),  # exact half of a tenth stays
        (1, 16, "6.3"),  # 6.25 → 6.3 (half up, where banker's rounding gives 6.2)
        (3, 16, "18.8"),  # 18.75 → 18.8
        (1, 3, "33.3"),
        (2, 3, "66.7"),
        (1, 2000, "0.1"),  # 0.05 → 0.1
        (1, 2001, "0.0"),  # 0.04997… → 0.0
        (0, 7, "0.0"),
        (7, 7, "100.0"),
        (12_345, 100_000, "12.3"),  # 12.345 → 12.3 (only the second decimal decides)
        (12_350, 100_000, "12.4"),  # 12.35 → 12.4
        (123_457, 1_000_000, "12.3"),
    ],
)
def test_open_rate_is_half_up_to_one_decimal(opens: int, delivered: int, expected: str) -> None:
    rate = open_rate(opens, delivered)
    assert rate == Decimal(expected)
    assert percent_text(rate) == expected + "%"


def test_open_rate_unknown_without_deliveries_or_opens() -> None:
    assert open_rate(3, 0) is None
    assert open_rate(None, 10) is None
    assert percent_text(None) == ""


def test_float_round_would_be_wrong_where_we_are_right() -> None:
    # round(6.25, 1) == 6.2 in Python (banker's rounding on the binary value); the city wants 6.3
    assert round(100 * 1 / 16, 1) == 6.2
    assert open_rate(1, 16) == Decimal("6.3")


def test_tokens_round_trip_and_are_short() -> None:
    token = sign_token(SECRET, "open", 12345, 9_876_543)
    assert len(token) <= 26
    pair = verify_token(SECRET, "open", token)
    assert pair is not None and (pair.broadcast_id, pair.endpoint_id) == (12345, 9_876_543)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # MAC changed
        lambda t: t[:3] + ("x" if t[3] != "x" else "y") + t[4:],  # payload changed
        lambda t: t + "AA",  # extra bytes
        lambda t: t[:10],  # truncated
        lambda t: t.replace(t[0], "!"),  # not base64url
        lambda t: "",
        lambda t: "A" * 200,
    ],
)
def test_tampered_or_malformed_tokens_are_refused(mutate: object) -> None:
    token = sign_token(SECRET, "click", 7, 8)
    assert verify_token(SECRET, "click", mutate(token)) is None  # type: ignore[operator]


def test_token_kinds_and_secrets_do_not_mix() -> None:
    token = sign_token(SECRET, "open", 7, 8)
    assert verify_token(SECRET, "click", token) is None
    assert verify_token(SECRET, "app", token) is None
    assert verify_token("another-secret", "open", token) is None


def test_email_links_are_short_and_signed() -> None:
    settings = Settings(secret_key=SECRET, public_url="https://city.example.jp/")
    links = tracking.email_links(settings, 41, 1_234_567, endpoint_token="a" * 32)
    assert links["unsubscribe_url"] == "https://city.example.jp/u/" + "a" * 32
    assert links["open_pixel_url"].startswith("https://city.example.jp/o/")
    assert links["open_pixel_url"].endswith(".gif")
    assert links["click_url_prefix"].endswith("?u=")
    for url in links.values():
        assert len(url) < 75  # stays out of RFC 2047 encoding in List-Unsubscribe
    token = links["open_pixel_url"].rsplit("/", 1)[1].removesuffix(".gif")
    assert tracking.verify_pixel(settings, token) == tracking.TrackedPair(41, 1_234_567)
    assert "unsubscribe_url" not in tracking.email_links(settings, 41, 1)


def test_rewrite_links_routes_every_url_and_keeps_sentence_punctuation() -> None:
    prefix = "https://hub/c/TOKEN?u="
    html = (
        '<a href="https://city.jp/a?x=1&amp;y=2">詳細</a> https://city.jp/b。(https://city.jp/c).'
    )
    out = tracking.rewrite_links(html, prefix)
    assert f'href="{prefix}{quote("https://city.jp/a?x=1&y=2", safe="")}"' in out
    assert f"{prefix}{quote('https://city.jp/b', safe='')}。" in out
    assert f"({prefix}{quote('https://city.jp/c', safe='')})." in out
    content = {"ja": {"email": {"html": html}}}
    assert tracking.broadcast_links(content) == {
        "https://city.jp/a?x=1&y=2",
        "https://city.jp/b",
        "https://city.jp/c",
        "https://city.jp/c).",  # as written, for adapters that take the whole href value
    }
    assert tracking.click_target_allowed(content, "https://city.jp/b")
    assert not tracking.click_target_allowed(content, "https://evil.example/")
    assert not tracking.click_target_allowed(content, "https://city.jp/b/../../evil")


@pytest.mark.parametrize(
    ("agent", "ip", "proxy"),
    [
        ("Mozilla/5.0", "203.0.113.9", True),  # Apple MPP preload
        ("Mozilla/5.0 (Windows NT 5.1) (via ggpht.com GoogleImageProxy)", None, True),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", None, True),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605",
            "17.58.1.2",
            True,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605",
            "198.51.100.4",
            False,
        ),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/115.0", "::1", False),
    ],
)
def test_privacy_proxies_are_recognised(agent: str, ip: str | None, proxy: bool) -> None:
    assert is_privacy_proxy(agent, ip) is proxy


def test_withheld_values_are_never_numbers() -> None:
    withheld = Measure.withheld()
    assert withheld.value is None and withheld.display() == "<20"
    assert open_rate(withheld.value, 100) is None
    assert total([Measure.known(30), Measure.known(12)]).display() == "42"
    partial = total([Measure.known(30), Measure.withheld()])
    assert partial.value is None and partial.display() == "30〜49"
    assert total([Measure.withheld(), Measure.withheld()]).display() == "<39"
    assert total([Measure.known(3), Measure("not_read")]).display() == "未取得"
    assert total([Measure.known(3), Measure("not_measured")]).display() == "-"


def _summary(title: str, channel: str, opens: Measure, delivered: int) -> BroadcastSummary:
    counts = {"targeted": delivered, "sent": delivered, "failed": 0, "pending": 0, "skipped": 0}
    figures = figures_from(
        channel, None, counts, 0, delivered, opens, Measure("not_measured"), None
    )
    return BroadcastSummary(
        broadcast_id=1,
        title=title,
        sent_at=dt.datetime(2025, 4, 1, 1, 5, tzinfo=dt.UTC),
        channels=[figures],
        total=figures,
    )


def test_csv_has_bom_crlf_the_city_columns_and_withheld_as_lt20() -> None:
    rows = report_rows(
        [
            _summary("健診のお知らせ", "fcm", Measure.known(1), 16),
            _summary('=HYPERLINK("http://x")', "line", Measure.withheld(), 12),
        ],
        ZoneInfo("Asia/Tokyo"),
    )
    body = to_csv(rows)
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.split("\r\n") == [
        "配信日時,内容,配信数,開封数,開封率",
        "2025/04/01 10:05,健診のお知らせ（アプリ）,16,1,6.3%",
        '2025/04/01 10:05,"\'=HYPERLINK(""http://x"")（LINE）",12,<20,-',
        "",
    ]
