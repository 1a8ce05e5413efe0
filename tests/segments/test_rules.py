"""Rule validation: shape errors and city errors name the field path and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from notify.city import CityConfig
from notify.errors import InvalidInput
from segments.rules import EVERYONE, AllOf, ChildAge, describe, parse_rule, rule_to_json


def fields_of(data: Any, city: CityConfig) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        parse_rule(data, city)
    return info.value.fields


def test_round_trip_through_json(city: CityConfig) -> None:
    data = {
        "type": "all",
        "rules": [
            {
                "type": "child_age",
                "min": {"years": 3, "months": 0},
                "max": {"years": 5, "months": 11},
            },
            {"type": "any", "rules": [{"type": "wards", "codes": ["141313", "141321"]}]},
            {"type": "not", "rule": {"type": "topics", "keys": ["events"]}},
            {"type": "channels", "channels": ["line", "email"]},
            {"type": "languages", "codes": ["ja", "en"]},
        ],
    }
    rule = parse_rule(data, city)
    assert rule_to_json(rule) == data
    assert parse_rule(rule_to_json(rule), city) == rule
    assert "川崎区・幸区" in describe(rule, city)


def test_empty_segment_is_everyone(city: CityConfig) -> None:
    assert parse_rule({}, city) == EVERYONE
    assert parse_rule(None, city) == AllOf(rules=[])


def test_unknown_ward_names_the_path(city: CityConfig) -> None:
    fields = fields_of(
        {"type": "all", "rules": [{"type": "wards", "codes": ["141313", "131016"]}]}, city
    )
    assert list(fields) == ["segment.all.rules.0.wards.codes.1"]
    assert "131016" in fields["segment.all.rules.0.wards.codes.1"]


def test_upside_down_age_range(city: CityConfig) -> None:
    fields = fields_of(
        {"type": "not", "rule": {"type": "child_age", "min": {"years": 6}, "max": {"years": 3}}},
        city,
    )
    assert list(fields) == ["segment.not.rule.child_age.max"]
    assert "below lower bound" in fields["segment.not.rule.child_age.max"]


def test_equal_bounds_are_fine(city: CityConfig) -> None:
    rule = parse_rule({"type": "child_age", "min": {"years": 1}, "max": {"years": 1}}, city)
    assert isinstance(rule, ChildAge)


def test_unknown_language_and_topic(city: CityConfig) -> None:
    fields = fields_of(
        {
            "type": "any",
            "rules": [
                {"type": "languages", "codes": ["fr"]},
                {"type": "topics", "keys": ["childcare", "sports"]},
            ],
        },
        city,
    )
    assert set(fields) == {
        "segment.any.rules.0.languages.codes.0",
        "segment.any.rules.1.topics.keys.1",
    }


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"type": "wards", "codes": []}, "segment.wards.codes"),
        ({"type": "child_age", "min": {"years": 3, "months": 12}}, "segment.child_age.min.months"),
        ({"type": "channels", "channels": ["sms"]}, "segment.channels.channels.0"),
        ({"type": "age"}, "segment"),
        ({"type": "wards", "codes": ["141313"], "extra": 1}, "segment.wards.extra"),
        ("everyone", "segment"),
    ],
)
def test_shape_errors(city: CityConfig, data: Any, path: str) -> None:
    assert path in fields_of(data, city)


def test_depth_and_size_are_bounded(city: CityConfig) -> None:
    deep: dict[str, Any] = {"type": "languages", "codes": ["ja"]}
    for _ in range(10):
        deep = {"type": "not", "rule": deep}
    fields = fields_of(deep, city)
    assert any("nested deeper" in reason for reason in fields.values())
    wide = {
        "type": "all",
        "rules": [{"type": "any", "rules": [{"type": "languages", "codes": ["ja"]}] * 60}] * 2,
    }
    assert "segment" in fields_of(wide, city)
