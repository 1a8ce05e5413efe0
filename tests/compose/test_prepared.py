"""Prepared messages: all load, render on every channel, and take parameters safely."""

from __future__ import annotations

import pytest

from notify.city import CityConfig
from notify.compose.checks import check_renderings
from notify.compose.prepared import prepared_message, prepared_messages
from notify.errors import InvalidInput, NotFound


def test_every_prepared_message_renders_everywhere(city: CityConfig) -> None:
    messages = prepared_messages()
    assert {"evacuation_order", "shelter_open", "evacuation_lifted"} <= {m.key for m in messages}
    for message in messages:
        content = message.instantiate({p.name: p.default or "テスト" for p in message.params})
        result = check_renderings(
            content, channels=message.channels, city=city, priority=message.priority
        )
        assert result.problems == {}, message.key
        assert set(content.root) <= city.language_codes


def test_evacuation_order_in_five_languages(city: CityConfig) -> None:
    message = prepared_message("evacuation_order")
    assert message.priority == "emergency" and message.topic == "disaster"
    content = message.instantiate({"area": "川崎区大師地区"})
    assert set(content.root) == {"ja", "en", "zh", "ko", "vi"}
    assert content.root["ja"].title == "【避難指示】川崎区大師地区"
    assert "最寄りの指定避難所" in content.root["ja"].body  # the default


def test_parameters_are_checked_and_never_become_template_code(city: CityConfig) -> None:
    message = prepared_message("evacuation_order")
    with pytest.raises(InvalidInput) as info:
        message.instantiate({"shelter": "x", "nope": "y"})
    assert set(info.value.fields) == {"params.area", "params.nope"}
    content = message.instantiate({"area": "{{ city.__class__ }}{% for %}"})
    result = check_renderings(content, channels=["line"], city=city)
    assert result.problems == {}
    text = result.line_messages["ja"].messages[0]["text"]
    assert text.startswith("【避難指示】{{ city.__class__ }}{% for %}")


def test_unknown_prepared_message() -> None:
    with pytest.raises(NotFound):
        prepared_message("tsunami_warning_xyz")


def test_every_template_the_jma_rules_name_is_a_prepared_emergency_message() -> None:
    from notify.jma import load_jma_config
    from notify.settings import REPO_ROOT

    config = load_jma_config(REPO_ROOT / "config" / "jma.yaml")
    named = {rule.template for city in ("141305", "141500") for rule in config.rules_for(city)}
    named.discard(None)
    assert named, "the JMA rules name no prepared message"
    for key in named:
        message = prepared_message(key)
        assert message.priority == "emergency", key
