"""evaluate(): what a telegram means for a city. Real telegrams, and variants derived from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify.jma import CityAreas, Decision, DecisionAction, Rule, evaluate, parse_telegram
from tests.jma.conftest import (
    KAWASAKI_WARDS,
    SAGAMIHARA_WARDS,
    derive,
    set_control,
    set_head,
    set_intensity,
    set_warning_kinds,
)

A = DecisionAction
VPWW53 = "official-samples/15_12_03_161130_VPWW53.xml"
VPWW55 = "official-samples/15_17_01_250630_VPWW55.xml"
VXWW50_ISSUED = "official-samples/17_04_01_250630_VXWW50.xml"
VXWW50_CLEARED = "official-samples/17_04_03_250630_VXWW50.xml"
VXSE51 = "official-samples/32-35_01_01_100806_VXSE51.xml"
VXSE51_CANCEL = "official-samples/32-35_10_01_220510_VXSE51.xml"
VXSE53 = "official-samples/32-35_06_03_240613_VXSE53.xml"
VXKO = "official-samples/16_02_02_220728_VXKOii.xml"
WARNING = "土砂災害警戒情報"


@pytest.fixture
def decide(jma_dir: Path, kawasaki: CityAreas, sagamihara: CityAreas, rules: tuple[Rule, ...]):  # type: ignore[no-untyped-def]
    cities = {"kawasaki": kawasaki, "sagamihara": sagamihara}

    def run(  # type: ignore[no-untyped-def]
        name: str, *changes, city: str = "kawasaki", auto: bool = True, data: bytes | None = None
    ) -> Decision:
        path = jma_dir / name
        if data is None:
            data = derive(path, *changes) if changes else path.read_bytes()
        decision = evaluate(parse_telegram(data), cities[city], rules, auto_switch_allowed=auto)
        assert decision.reason_ja and decision.reason_en
        assert any("\u3040" <= ch <= "\u9fff" for ch in decision.reason_ja)
        return decision

    return run


@pytest.mark.parametrize("city", ["kawasaki", "sagamihara"])
def test_no_reference_telegram_triggers_either_city(jma_dir: Path, decide, city: str) -> None:  # type: ignore[no-untyped-def]
    """None of the real telegrams concerns 川崎市/相模原市 (宮城川崎町 5- included)."""
    for path in sorted(jma_dir.rglob("*.xml")):
        decision = decide(str(path.relative_to(jma_dir)), city=city)
        expected = A.WITHDRAW if path.name == Path(VXSE51_CANCEL).name else A.IGNORE
        assert decision.action is expected, (path.name, decision)
        assert decision.ward_codes == () and decision.template_key is None


def test_other_places_are_named_as_such(decide) -> None:  # type: ignore[no-untyped-def]
    assert "含まれていません" in decide(VPWW55).reason_ja  # Shimane
    assert "該当しません" in decide(VPWW53).reason_ja  # Kawasaki listed, advisories only


# --- weather warnings ----------------------------------------------------------------------

HEAVY_RAIN = ("33", "大雨特別警報", "発表")


def test_heavy_rain_emergency_on_kawasaki_switches_every_ward(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VPWW53, set_warning_kinds("1413000", [HEAVY_RAIN]))
    assert decision.action is A.SWITCH
    assert decision.ward_codes == KAWASAKI_WARDS
    assert decision.template_key == "emergency_heavy_rain"
    assert decision.rule_keys == ("heavy_rain_emergency",)
    assert decision.fresh and decision.event_key == "weather_warning:神奈川県気象警報・注意報"
    assert "大雨特別警報（川崎市 (1413000)）" in decision.reason_ja
    assert "自動で切り替えます" in decision.reason_ja


def test_without_auto_switch_the_same_telegram_proposes(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VPWW53, set_warning_kinds("1413000", [HEAVY_RAIN]), auto=False)
    assert decision.action is A.PROPOSE
    assert decision.template_key == "emergency_heavy_rain"
    assert "自動切替は設定で無効" in decision.reason_ja


def test_kawasakis_emergency_is_not_sagamiharas(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VPWW53, set_warning_kinds("1413000", [HEAVY_RAIN]), city="sagamihara")
    assert decision.action is A.IGNORE


def test_a_continuing_emergency_is_not_fresh(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VPWW53, set_warning_kinds("1413000", [("33", "大雨特別警報", "継続")]))
    assert decision.action is A.SWITCH and not decision.fresh


def test_name_lookalikes_never_trigger(decide) -> None:  # type: ignore[no-untyped-def]
    """An item named 川崎市 with another city's code (宮城川崎町) is not Kawasaki."""
    change = set_warning_kinds("1420100", [HEAVY_RAIN], new_code="0432400", new_name="川崎市")
    assert decide(VPWW53, change).action is A.IGNORE


def test_emergency_on_a_region_item_alone_never_triggers(decide) -> None:  # type: ignore[no-untyped-def]
    change = set_warning_kinds(
        "140011", [HEAVY_RAIN], warning_type="気象警報・注意報（市町村等をまとめた地域等）"
    )
    assert decide(VPWW53, change).action is A.IGNORE


@pytest.mark.parametrize(
    "kinds",
    [
        [("33", "大雨特別警報", "解除")],
        [("03", "大雨警報", "特別警報から警報")],  # old format: no <LastKind>
        [("10", "大雨注意報", "特別警報から注意報")],
        [("03", "レベル３大雨警報", "特別警報から警報", "33")],  # new format: <LastKind> 33
    ],
)
def test_lifting_the_emergency_proposes_return_to_normal(decide, kinds) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VPWW53, set_warning_kinds("1413000", kinds))
    assert decision.action is A.PROPOSE_RETURN_TO_NORMAL
    assert decision.ward_codes == KAWASAKI_WARDS
    assert decision.rule_keys == ("heavy_rain_emergency",)
    assert "解除されました" in decision.reason_ja and decision.template_key is None


@pytest.mark.parametrize(
    "kinds",
    [
        [("10", "大雨注意報", "警報から注意報")],  # a warning ended, no emergency was in force
        [("03", "レベル３大雨警報", "継続", "03")],
        [("15", "強風注意報", "解除")],
    ],
)
def test_unrelated_changes_are_ignored(decide, kinds) -> None:  # type: ignore[no-untyped-def]
    assert decide(VPWW53, set_warning_kinds("1413000", kinds)).action is A.IGNORE


def test_new_format_warning_on_a_mapped_code(decide) -> None:  # type: ignore[no-untyped-def]
    change = set_warning_kinds(
        "3220100", [("33", "レベル５大雨特別警報", "発表", "03")], new_code="1415000"
    )
    decision = decide(VPWW55, change, city="sagamihara")
    assert decision.action is A.SWITCH and decision.ward_codes == SAGAMIHARA_WARDS


# --- landslide alerts ----------------------------------------------------------------------


def test_landslide_alert_on_sagamiharas_east_proposes_its_wards(decide) -> None:  # type: ignore[no-untyped-def]
    change = set_warning_kinds("1415012", [("3", "警戒", "発表")], warning_type=WARNING)
    decision = decide(VXWW50_ISSUED, change, city="sagamihara")
    assert decision.action is A.PROPOSE
    assert decision.ward_codes == SAGAMIHARA_WARDS
    assert decision.template_key == "evacuation_landslide"
    assert decision.event_key == "landslide_alert:神奈川県土砂災害警戒情報"
    assert decide(VXWW50_ISSUED, change).action is A.IGNORE  # Kawasaki: なし


def test_landslide_alert_on_the_west_concerns_midori_only(decide) -> None:  # type: ignore[no-untyped-def]
    change = set_warning_kinds("1415011", [("3", "警戒", "発表")], warning_type=WARNING)
    decision = decide(VXWW50_ISSUED, change, city="sagamihara")
    assert decision.ward_codes == ("141518",)
    assert "相模原市西部 (1415011)" in decision.reason_ja


def test_landslide_all_clear_proposes_return_to_normal(decide) -> None:  # type: ignore[no-untyped-def]
    change = set_warning_kinds("1415011", [("1", "解除", "解除")], warning_type=WARNING)
    decision = decide(VXWW50_CLEARED, change, city="sagamihara")
    assert decision.action is A.PROPOSE_RETURN_TO_NORMAL
    assert decision.ward_codes == ("141518",)


def test_a_city_still_under_alert_is_not_returned_to_normal(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(
        VXWW50_CLEARED,
        set_warning_kinds("1415011", [("1", "解除", "解除")], warning_type=WARNING),
        set_warning_kinds("1415012", [("3", "警戒", "継続")], warning_type=WARNING),
        city="sagamihara",
    )
    assert decision.action is A.PROPOSE and not decision.fresh


# --- earthquakes ---------------------------------------------------------------------------


def test_intensity_5_lower_in_one_ward_switches_that_ward(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE53, set_intensity("1413100", "5-"))
    assert decision.action is A.SWITCH
    assert decision.ward_codes == ("141313",)
    assert decision.template_key == "emergency_earthquake"
    assert "川崎川崎区 (1413100) 震度５弱" in decision.reason_ja
    assert decision.event_key == "seismic:20080614084350"


def test_intensity_4_does_not_trigger(decide) -> None:  # type: ignore[no-untyped-def]
    assert decide(VXSE53, set_intensity("1413100", "4")).action is A.IGNORE


def test_unreported_stations_count_as_5_lower(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE53, set_intensity("1413200", None, "震度５弱以上未入電"))
    assert decision.action is A.SWITCH and decision.ward_codes == ("141321",)
    assert "未入電" in decision.reason_ja


def test_sagamiharas_pre_2010_code_still_maps(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE53, set_intensity("1420900", "5+"), city="sagamihara")
    assert decision.action is A.SWITCH and decision.ward_codes == SAGAMIHARA_WARDS


def test_region_flash_proposes_never_switches(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE51, set_intensity("360", "5-"))
    assert decision.action is A.PROPOSE
    assert decision.ward_codes == KAWASAKI_WARDS
    assert "地域単位" in decision.reason_ja
    assert decide(VXSE51, set_intensity("360", "5-"), city="sagamihara").action is A.IGNORE


def test_city_level_intensities_beat_the_region(decide) -> None:  # type: ignore[no-untyped-def]
    """神奈川県東部 at 5- (e.g. Yokohama) while Kawasaki's wards had 2: nothing for Kawasaki."""
    assert decide(VXSE53, set_intensity("360", "5-")).action is A.IGNORE


@pytest.mark.parametrize("status", ["訓練", "試験"])
def test_drills_and_tests_never_switch(decide, status: str) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE53, set_intensity("1413100", "7"), set_control("Status", status))
    assert decision.action is A.IGNORE
    assert status in decision.reason_ja


def test_a_correction_that_no_longer_qualifies_withdraws(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE53, set_intensity("1413700", "4"), set_head("InfoType", "訂正"))
    assert decision.action is A.WITHDRAW
    assert decision.cancels_event_key == "seismic:20080614084350"
    assert "訂正" in decision.reason_ja


def test_a_correction_is_evaluated_like_an_issue(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(VXSE53, set_intensity("1413700", "6-"), set_head("InfoType", "訂正"))
    assert decision.action is A.SWITCH and decision.ward_codes == ("141372",)


# --- cancellations, other kinds -------------------------------------------------------------


def test_cancellation_withdraws_what_the_cancelled_event_started(decide) -> None:  # type: ignore[no-untyped-def]
    started = decide(VXSE51, set_intensity("360", "5+"), set_head("EventID", "20220509152315"))
    assert started.action is A.PROPOSE
    withdrawal = decide(VXSE51_CANCEL)
    assert withdrawal.action is A.WITHDRAW
    assert withdrawal.cancels_event_key == started.event_key
    assert withdrawal.cancels_event_id == "20220509152315"
    assert decide(VXSE51_CANCEL, city="sagamihara").cancels_event_key == started.event_key


def test_a_drill_cancellation_withdraws_nothing(decide) -> None:  # type: ignore[no-untyped-def]
    assert decide(VXSE51_CANCEL, set_control("Status", "訓練")).action is A.IGNORE


def test_unsupported_kinds_are_ignored(decide) -> None:  # type: ignore[no-untyped-def]
    decision = decide(
        VXSE53, set_intensity("1413100", "7"), set_control("Title", "長周期地震動に関する観測情報")
    )
    assert decision.action is A.IGNORE and "対象外" in decision.reason_ja


def test_river_flood_danger_proposes_for_the_flooded_city(decide, jma_dir: Path) -> None:  # type: ignore[no-untyped-def]
    # the real 六角川 forecast, with 武雄市 replaced by 川崎市
    moved = (jma_dir / VXKO).read_bytes().replace(b"<CityCode>4120600<", b"<CityCode>1413000<")
    assert decide(VXKO, data=moved).action is A.IGNORE  # 氾濫警戒情報 (code 30) is below the rule
    danger = moved.replace(b"<Code>30</Code>", b"<Code>41</Code>").replace(
        "氾濫警戒情報".encode(), "氾濫危険情報".encode()
    )
    decision = decide(VXKO, data=danger)
    assert decision.action is A.PROPOSE and decision.ward_codes == KAWASAKI_WARDS
    assert decision.template_key == "evacuation_flood"
    assert decide(VXKO, data=danger, city="sagamihara").action is A.IGNORE
    cleared = moved.replace("氾濫警戒情報".encode(), "氾濫警戒情報解除".encode())
    assert decide(VXKO, data=cleared).action is A.PROPOSE_RETURN_TO_NORMAL
