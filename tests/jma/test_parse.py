"""Every reference telegram parses into the expected typed values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from notify.jma import (
    AreaScope,
    EntryState,
    InfoType,
    Intensity,
    Telegram,
    TelegramKind,
    TelegramStatus,
    parse_telegram,
)

# file → (kind, data type, InfoType, EventID, Serial, ReportDateTime)
EXPECTED = {
    "15_12_03_161130_VPWW53.xml": (
        TelegramKind.WEATHER_WARNING,
        "VPWW53",
        "発表",
        "",
        "",
        "2016-07-15T16:03:00+09:00",
    ),
    "15_12_03_161130_VPWW54.xml": (
        TelegramKind.WEATHER_WARNING,
        "VPWW54",
        "発表",
        "",
        "",
        "2016-07-15T16:03:00+09:00",
    ),
    "15_17_01_250630_VPWW55.xml": (
        TelegramKind.WEATHER_WARNING,
        "VPWW55",
        "発表",
        "",
        "",
        "2024-11-02T11:19:00+09:00",
    ),
    "16_02_02_220728_VXKOii.xml": (
        TelegramKind.RIVER_FLOOD,
        "VXKO",
        "発表",
        "890904000100",
        "1",
        "2021-08-13T15:10:00+09:00",
    ),
    "16_06_01_220728_VXKOii.xml": (
        TelegramKind.RIVER_FLOOD,
        "VXKO",
        "発表",
        "123456789012",
        "4",
        "2019-05-27T09:00:00+09:00",
    ),
    "17_04_01_250630_VXWW50.xml": (
        TelegramKind.LANDSLIDE_ALERT,
        "VXWW50",
        "発表",
        "神奈川県土砂災害警戒情報",
        "1",
        "2024-11-02T18:50:00+09:00",
    ),
    "17_04_02_250630_VXWW50.xml": (
        TelegramKind.LANDSLIDE_ALERT,
        "VXWW50",
        "発表",
        "神奈川県土砂災害警戒情報",
        "2",
        "2024-11-02T20:50:00+09:00",
    ),
    "17_04_03_250630_VXWW50.xml": (
        TelegramKind.LANDSLIDE_ALERT,
        "VXWW50",
        "発表",
        "神奈川県土砂災害警戒情報",
        "3",
        "2024-11-02T23:27:00+09:00",
    ),
    "32-35_01_01_100806_VXSE51.xml": (
        TelegramKind.SEISMIC,
        "VXSE51",
        "発表",
        "20090811050711",
        "",
        "2009-08-11T05:09:00+09:00",
    ),
    "32-35_06_03_240613_VXSE53.xml": (
        TelegramKind.SEISMIC,
        "VXSE53",
        "発表",
        "20080614084350",
        "1",
        "2008-06-14T08:47:00+09:00",
    ),
    "32-35_10_01_220510_VXSE51.xml": (
        TelegramKind.SEISMIC,
        "VXSE51",
        "取消",
        "20220509152315",
        "",
        "2022-05-10T18:10:00+09:00",
    ),
    "20210217140808_0_VXSE51_010000.xml": (
        TelegramKind.SEISMIC,
        "VXSE51",
        "発表",
        "20210217230627",
        "",
        "2021-02-17T23:08:00+09:00",
    ),
    "20210217140847_0_VXSE52_010000.xml": (
        TelegramKind.SEISMIC,
        "VXSE52",
        "発表",
        "20210217230627",
        "",
        "2021-02-17T23:08:00+09:00",
    ),
    "20210217140958_0_VXSE53_010000.xml": (
        TelegramKind.SEISMIC,
        "VXSE53",
        "発表",
        "20210217230627",
        "1",
        "2021-02-17T23:09:00+09:00",
    ),
}


def _load(jma_dir: Path, name: str) -> Telegram:
    path = next(jma_dir.rglob(name))
    return parse_telegram(path.read_bytes())


def _area(telegram: Telegram, code: str):  # type: ignore[no-untyped-def]
    found = [a for a in (*telegram.warning_areas, *telegram.seismic_areas) if a.code == code]
    assert len(found) == 1, f"{code}: {found}"
    return found[0]


def test_the_table_covers_every_reference_telegram(jma_dir: Path) -> None:
    assert {p.name for p in jma_dir.rglob("*.xml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_reference_telegram_parses(jma_dir: Path, name: str) -> None:
    kind, data_type, info_type, event_id, serial, reported = EXPECTED[name]
    telegram = _load(jma_dir, name)
    assert (telegram.kind, telegram.data_type) == (kind, data_type)
    assert telegram.info_type is InfoType(info_type)
    assert telegram.status is TelegramStatus.NORMAL and telegram.is_real
    assert (telegram.event_id, telegram.serial) == (event_id, serial)
    assert telegram.report_datetime == dt.datetime.fromisoformat(reported)
    assert telegram.report_datetime.utcoffset() == dt.timedelta(hours=9)
    assert telegram.head_title and telegram.publishing_office
    with pytest.raises(AttributeError):
        telegram.status = TelegramStatus.DRILL  # type: ignore[misc]


@pytest.mark.parametrize("data_type", ["VPWW53", "VPWW54"])
def test_kanagawa_warnings_treat_each_city_as_one_area(jma_dir: Path, data_type: str) -> None:
    telegram = _load(jma_dir, f"15_12_03_161130_{data_type}.xml")
    kawasaki = _area(telegram, "1413000")
    assert (kawasaki.name, kawasaki.scope) == ("川崎市", AreaScope.CITY)
    assert [(e.code, e.name, e.state) for e in kawasaki.entries] == [
        ("15", "強風注意報", EntryState.ISSUED),
        ("16", "波浪注意報", EntryState.ISSUED),
    ]
    sagamihara = _area(telegram, "1415000")
    assert [(e.code, e.name) for e in sagamihara.entries] == [("15", "強風注意報")]
    # 横浜・川崎 and 東部 are regions holding several cities, never city-sized
    assert _area(telegram, "140011").scope is AreaScope.REGION
    assert _area(telegram, "140010").scope is AreaScope.REGION
    assert _area(telegram, "140000").scope is AreaScope.PREFECTURE
    assert not [
        a for a in telegram.warning_areas if a.code.startswith("1415") and a.code != "1415000"
    ]


def test_new_format_warning_keeps_last_kind_and_clearances(jma_dir: Path) -> None:
    telegram = _load(jma_dir, "15_17_01_250630_VPWW55.xml")
    matsue = _area(telegram, "3220100")
    assert [(e.code, e.name, e.status, e.last_code) for e in matsue.entries] == [
        ("03", "レベル３大雨警報", "継続", "03")
    ]
    assert matsue.entries[0].state is EntryState.CONTINUING
    okinoshima = _area(telegram, "3252800")
    assert [(e.code, e.state) for e in okinoshima.entries] == [("10", EntryState.CLEARED)]
    ama = _area(telegram, "3252500")
    assert [e.state for e in ama.entries] == [EntryState.NONE]


def test_landslide_alerts_split_sagamihara_and_track_one_sequence(jma_dir: Path) -> None:
    states = []
    for serial in ("01", "02", "03"):
        telegram = _load(jma_dir, f"17_04_{serial}_250630_VXWW50.xml")
        assert _area(telegram, "1415011").name == "相模原市西部"
        assert _area(telegram, "1415012").name == "相模原市東部"
        assert _area(telegram, "1413000").entries[0].state is EntryState.NONE
        assert telegram.event_key == "landslide_alert:神奈川県土砂災害警戒情報"
        odawara = _area(telegram, "1420600").entries[0]
        states.append((odawara.code, odawara.name, odawara.state))
    assert states == [
        ("3", "警戒", EntryState.ISSUED),
        ("3", "警戒", EntryState.CONTINUING),
        ("1", "解除", EntryState.CLEARED),
    ]


def test_intensity_flash_lists_regions_only(jma_dir: Path) -> None:
    telegram = _load(jma_dir, "32-35_01_01_100806_VXSE51.xml")
    assert telegram.max_intensity is Intensity.I6_LOWER
    assert {a.scope for a in telegram.seismic_areas} == {AreaScope.REGION}
    east = _area(telegram, "360")
    assert (east.name, east.max_intensity) == ("神奈川県東部", Intensity.I4)
    assert _area(telegram, "442").max_intensity is Intensity.I6_LOWER


def test_cancellation_names_the_event_it_cancels(jma_dir: Path) -> None:
    telegram = _load(jma_dir, "32-35_10_01_220510_VXSE51.xml")
    assert telegram.info_type is InfoType.CANCELLED
    assert telegram.event_key == "seismic:20220509152315"
    assert telegram.seismic_areas == () and telegram.max_intensity is None


def test_intensity_report_lists_kawasaki_wards_and_old_sagamihara(jma_dir: Path) -> None:
    telegram = _load(jma_dir, "32-35_06_03_240613_VXSE53.xml")
    assert telegram.max_intensity is Intensity.I6_UPPER
    for ward in range(1, 8):
        area = _area(telegram, f"141{30 + ward}00")
        assert area.scope is AreaScope.CITY and area.max_intensity is Intensity.I2
        assert area.name.startswith("川崎")
    sagamihara = _area(telegram, "1420900")
    assert (sagamihara.name, sagamihara.max_intensity) == ("相模原市", Intensity.I2)
    # intensity-station codes look like city codes; they are not areas
    codes = {a.code for a in telegram.seismic_areas}
    assert not codes & {"1415121", "1415130", "1415132", "1413120", "0320934"}
    # name traps: the stations 一関市川崎町 / 久慈市川崎町 belong to their own cities
    assert _area(telegram, "0320700").name == "久慈市"
    assert _area(telegram, "0320900").name == "一関市"
    trap = _area(telegram, "0432400")
    assert (trap.name, trap.max_intensity) == ("宮城川崎町", Intensity.I5_LOWER)


def test_real_sequence_shares_one_event(jma_dir: Path) -> None:
    flash, hypocentre, detail = (
        _load(jma_dir, f"20210217140{n}_0_{t}_010000.xml")
        for n, t in (("808", "VXSE51"), ("847", "VXSE52"), ("958", "VXSE53"))
    )
    assert flash.event_key == hypocentre.event_key == detail.event_key
    assert [(a.code, a.max_intensity) for a in flash.seismic_areas] == [
        ("222", Intensity.I3),
        ("251", Intensity.I3),
    ]
    assert hypocentre.seismic_areas == () and hypocentre.max_intensity is None
    assert detail.max_intensity is Intensity.I3
    assert _area(detail, "0432400").name == "宮城川崎町"
    assert _area(detail, "0420200").max_intensity is Intensity.I3


def test_river_flood_forecast_lists_flooded_cities(jma_dir: Path) -> None:
    telegram = _load(jma_dir, "16_02_02_220728_VXKOii.xml")
    assert [a.code for a in telegram.warning_areas] == [
        "4120600",
        "4120900",
        "4142300",
        "4142400",
        "4142500",
    ]
    takeo = telegram.warning_areas[0]
    assert (takeo.name, takeo.scope) == ("武雄市", AreaScope.CITY)
    assert [(e.code, e.name, e.state) for e in takeo.entries] == [
        ("30", "氾濫警戒情報", EntryState.ISSUED)
    ]


def test_intensity_scale_orders_lower_before_upper() -> None:
    assert Intensity.I5_UPPER.at_least(Intensity.I5_LOWER)
    assert not Intensity.I4.at_least(Intensity.I5_LOWER)
    assert not Intensity.I5_LOWER.at_least(Intensity.I5_UPPER)
    assert Intensity.I7.at_least(Intensity.I6_UPPER)
    assert Intensity.I5_LOWER.label_ja == "震度５弱"
    assert Intensity.I6_UPPER.label_en == "intensity 6 upper"
