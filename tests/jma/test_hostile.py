"""Hostile, malformed and foreign input gets a clear refusal, never a crash or a fetch."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify.errors import InvalidInput, PayloadTooLarge
from notify.jma import TelegramKind, parse_atom_feed, parse_telegram
from tests.jma.conftest import derive, set_control, set_head

REPORT_HEAD = (
    '<Report xmlns="http://xml.kishou.go.jp/jmaxml1/">'
    "<Control><Title>震度速報</Title><Status>通常</Status></Control>"
    '<Head xmlns="http://xml.kishou.go.jp/jmaxml1/informationBasis1/">'
    "<Title>震度速報</Title><ReportDateTime>2021-02-17T23:08:00+09:00</ReportDateTime>"
    "<EventID>1</EventID><InfoType>発表</InfoType></Head></Report>"
)


def _refused(data: bytes, field_value: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_telegram(data)
    assert caught.value.fields == {"telegram": field_value}
    assert caught.value.status == 422 and caught.value.message
    return caught.value


def test_a_minimal_valid_report_parses() -> None:
    telegram = parse_telegram(REPORT_HEAD.encode())
    assert telegram.kind is TelegramKind.SEISMIC and telegram.seismic_areas == ()


def test_entity_expansion_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        "<r>&c;</r>"
    )
    _refused(bomb.encode(), "forbidden XML construct")


def test_external_entity_is_refused_not_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE Report [<!ENTITY x SYSTEM "file://{secret}">]>'
        + REPORT_HEAD.replace("<EventID>1</EventID>", "<EventID>&x;</EventID>")
    )
    error = _refused(xxe.encode(), "forbidden XML construct")
    assert "do not read me" not in error.message


def test_any_doctype_is_refused() -> None:
    _refused(
        b'<?xml version="1.0"?><!DOCTYPE Report>' + REPORT_HEAD.encode(), "forbidden XML construct"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<Report",
        b"\x00\x01\x02",
        REPORT_HEAD.encode()[:-20],
        b'<?xml version="1.0" encoding="UTF-8"?><a>\xff</a>',
    ],
)
def test_malformed_xml_is_refused(data: bytes) -> None:
    _refused(data, "malformed XML")


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body>not a telegram</body></html>",
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>JMAXML publishing feed</title></feed>',
        REPORT_HEAD.replace("http://xml.kishou.go.jp/jmaxml1/", "urn:other", 1).encode(),
    ],
)
def test_foreign_xml_is_refused(data: bytes) -> None:
    _refused(data, "foreign XML")


def test_a_report_without_head_is_refused() -> None:
    data = REPORT_HEAD.split("<Head")[0] + "</Report>"
    _refused(data.encode(), "missing Head")


@pytest.mark.parametrize(
    ("change", "field_value"),
    [
        (set_control("Status", "本番"), "bad Status"),
        (set_head("InfoType", "更新"), "bad InfoType"),
        (set_head("ReportDateTime", "2021-02-17 23:08"), "bad ReportDateTime"),
        (set_head("ReportDateTime", "2021-02-17T23:08:00"), "bad ReportDateTime"),
        (set_head("InfoType", ""), "empty InfoType"),
    ],
)
def test_wrong_head_values_are_refused(jma_dir: Path, change, field_value: str) -> None:  # type: ignore[no-untyped-def]
    path = jma_dir / "real-telegrams-2021-02-17" / "20210217140808_0_VXSE51_010000.xml"
    _refused(derive(path, change), field_value)


def test_non_numeric_area_code_is_refused(jma_dir: Path) -> None:
    path = jma_dir / "real-telegrams-2021-02-17" / "20210217140808_0_VXSE51_010000.xml"
    data = path.read_bytes().replace(b"<Code>222</Code><MaxInt>", b"<Code>22x</Code><MaxInt>")
    _refused(data, "bad area code")


def test_oversized_input_is_refused_before_parsing(jma_dir: Path) -> None:
    data = (jma_dir / "official-samples" / "15_12_03_161130_VPWW54.xml").read_bytes()
    with pytest.raises(PayloadTooLarge) as caught:
        parse_telegram(data, max_bytes=len(data) - 1)
    assert caught.value.status == 413
    assert parse_telegram(data, max_bytes=len(data)).data_type == "VPWW54"
    with pytest.raises(PayloadTooLarge):
        parse_telegram(b" " * 5_000_001)


def test_text_instead_of_bytes_is_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_telegram(REPORT_HEAD)  # type: ignore[arg-type]


def test_another_jma_kind_is_unsupported_not_an_error(jma_dir: Path) -> None:
    path = jma_dir / "official-samples" / "32-35_01_01_100806_VXSE51.xml"
    telegram = parse_telegram(derive(path, set_control("Title", "竜巻注意情報")))
    assert (telegram.kind, telegram.data_type) == (TelegramKind.UNSUPPORTED, "")
    assert telegram.seismic_areas == ()


# --- the Atom feed that announces telegrams ------------------------------------------------

FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ja">
<title>高頻度（随時）</title>
<id>https://www.data.jma.go.jp/developer/xml/feed/extra.xml</id>
<updated>2024-11-02T18:50:16+09:00</updated>
<link href="https://www.data.jma.go.jp/developer/xml/feed/extra.xml" rel="self"/>
<entry>
<title>土砂災害警戒情報</title>
<id>https://www.data.jma.go.jp/developer/xml/data/20241102095016_0_VXWW50_140000.xml</id>
<updated>2024-11-02T09:50:16Z</updated>
<author><name>横浜地方気象台</name></author>
<link type="application/xml" href="https://www.data.jma.go.jp/developer/xml/data/20241102095016_0_VXWW50_140000.xml"/>
<content type="text">【神奈川県土砂災害警戒情報】</content>
</entry>
<entry>
<title>気象特別警報・警報・注意報</title>
<id>urn:uuid:34847d17-e9e0-356a-9b84-c1041d55c088</id>
<updated>2017-12-31T16:32:15Z</updated>
<author><name>名古屋地方気象台</name></author>
<link type="application/xml" href="http://xml.kishou.go.jp/data/34847d17-e9e0-356a-9b84-c1041d55c088.xml"/>
<content type="text">【愛知県気象警報・注意報】</content>
</entry>
</feed>
"""


def test_feed_entries_point_at_their_telegrams() -> None:
    first, second = parse_atom_feed(FEED.encode())
    assert first.title == "土砂災害警戒情報" and first.author == "横浜地方気象台"
    assert first.data_type == "VXWW50"
    assert first.link.endswith("_0_VXWW50_140000.xml")
    assert first.updated.isoformat() == "2024-11-02T09:50:16+00:00"
    assert second.data_type == ""  # old uuid-style URLs do not say
    assert second.content == "【愛知県気象警報・注意報】"


@pytest.mark.parametrize(
    ("data", "field_value"),
    [
        (
            b'<!DOCTYPE feed [<!ENTITY x "y">]><feed xmlns="http://www.w3.org/2005/Atom"/>',
            "forbidden XML construct",
        ),
        (b"<feed", "malformed"),
        (REPORT_HEAD.encode(), "foreign XML"),
        (FEED.replace('href="https://www.data', 'href="file:///etc/passwd#').encode(), "bad link"),
        (FEED.replace("2017-12-31T16:32:15Z", "yesterday").encode(), "bad updated"),
    ],
)
def test_bad_feeds_are_refused(data: bytes, field_value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_atom_feed(data)
    assert caught.value.fields == {"feed": field_value}


def test_oversized_feed_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_atom_feed(FEED.encode(), max_bytes=100)
