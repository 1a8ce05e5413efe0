"""config/jma.yaml agrees with the official local-government codes and the city configs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from notify.city import load_city
from notify.errors import ConfigError
from notify.jma import JmaConfig, TelegramKind, load_jma_config
from notify.settings import REPO_ROOT
from tests.jma.conftest import KAWASAKI, KAWASAKI_WARDS, SAGAMIHARA, SAGAMIHARA_WARDS


def _admin_codes(reference_dir: Path) -> dict[str, str]:
    """6-digit local-government code → 市区町村名 (e.g. 141313 → 川崎市川崎区)."""
    with (reference_dir / "admin-codes" / "kawasaki_sagamihara_lines.csv").open(
        encoding="utf-8"
    ) as f:
        return {row[0]: row[3] for row in csv.reader(f)}


@pytest.mark.parametrize(
    ("city_code", "city_name", "wards", "city_file"),
    [
        (KAWASAKI, "川崎市", KAWASAKI_WARDS, "kawasaki.yaml"),
        (SAGAMIHARA, "相模原市", SAGAMIHARA_WARDS, "sagamihara.yaml"),
    ],
)
def test_each_city_maps_to_its_official_ward_codes(
    jma_config: JmaConfig,
    reference_dir: Path,
    city_code: str,
    city_name: str,
    wards: tuple[str, ...],
    city_file: str,
) -> None:
    official = _admin_codes(reference_dir)
    assert official[city_code] == city_name
    city = jma_config.city(city_code)
    assert city.ja == city_name
    assert set(city.ward_codes) == set(wards)
    for ward in city.ward_codes:
        assert official[ward].startswith(city_name), ward
    # the whole-city area covers every ward; the city config agrees on the wards
    assert set(city.area_wards(f"{city_code[:5]}00")) == set(wards)
    city_config = load_city(REPO_ROOT / "config" / city_file)
    assert city_config.city.code == city_code
    assert jma_config.city(city_code, ward_codes=city_config.ward_codes) is city


def test_ward_level_jma_codes_derive_from_the_ward_codes(jma_config: JmaConfig) -> None:
    """JMA's 7-digit 市町村等 code is the 5-digit municipal code plus "00": 141313 → 1413100."""
    for city_code in (KAWASAKI, SAGAMIHARA):
        for area in jma_config.city(city_code).areas:
            if area.code.endswith("00") and len(area.wards) == 1:
                assert area.code[:5] == area.wards[0][:5], area


def test_sagamihara_parts_and_old_code(jma_config: JmaConfig) -> None:
    city = jma_config.city(SAGAMIHARA)
    assert city.area_wards("1415011") == ("141518",)  # 西部: 緑区 (former 津久井 towns)
    assert set(city.area_wards("1415012")) == set(SAGAMIHARA_WARDS)  # 東部
    assert set(city.area_wards("1420900")) == set(SAGAMIHARA_WARDS)  # before 2010
    assert city.region_wards("361") and not city.area_wards("361")  # 神奈川県西部 is a region


def test_regions_are_never_areas(jma_config: JmaConfig) -> None:
    kawasaki = jma_config.city(KAWASAKI)
    assert kawasaki.area_wards("360") == () and len(kawasaki.region_wards("360")) == 7
    assert kawasaki.area_wards("0432400") == ()  # 宮城川崎町


def test_rules_cover_the_issue_examples(jma_config: JmaConfig) -> None:
    by_key = {r.key: r for r in jma_config.rules}
    assert by_key["heavy_rain_emergency"].kind_codes == ("33",)
    assert by_key["landslide_alert"].telegram is TelegramKind.LANDSLIDE_ALERT
    assert by_key["earthquake_5_lower"].min_intensity == "5-"
    assert jma_config.rules_for(KAWASAKI) == jma_config.rules


def test_unknown_city_and_unknown_wards_are_config_errors(jma_config: JmaConfig) -> None:
    with pytest.raises(ConfigError, match="no section for city 131000"):
        jma_config.city("131000")
    with pytest.raises(ConfigError, match="unknown wards"):
        jma_config.city(KAWASAKI, ward_codes=frozenset(KAWASAKI_WARDS[:-1]))


def _with(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((REPO_ROOT / "config" / "jma.yaml").read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "jma.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["cities"]["141305"]["areas"].append(
                dict(r["cities"]["141305"]["areas"][0])
            ),
            "listed twice",
        ),
        (lambda r: r["cities"]["141305"]["areas"][0].update(wards=["14131"]), "6-digit"),
        (lambda r: r["rules"][3].pop("min_intensity"), "min_intensity"),
        (lambda r: r["rules"][0].update(kind_codes=[]), "kind_codes"),
        (lambda r: r["rules"][0].update(action="shout"), "action"),
        (lambda r: r["rules"][0].update(telegram="unsupported"), "telegram"),
        (lambda r: r["rules"].append(dict(r["rules"][0])), "unique"),
        (lambda r: r.update(cities={"kawasaki": r["cities"]["141305"]}), "6-digit"),
        (lambda r: r["cities"]["141305"].update(wards=[]), "Extra inputs"),
    ],
)
def test_bad_config_is_refused(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        load_jma_config(_with(tmp_path, edit))


def test_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_jma_config(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("rules: [", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_jma_config(tmp_path / "broken.yaml")
