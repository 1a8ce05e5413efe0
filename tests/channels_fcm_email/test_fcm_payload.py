"""The pure part of the FCM channel: payloads checked against FCM's discovery schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.base import PushMessage
from channels.fcm import _RequestBodies, build_message_json, build_topic_data_json
from sandbox.fcm.schema import RequestValidator, load_discovery


@pytest.fixture(scope="module")
def validator(reference_dir: Path) -> RequestValidator:
    return RequestValidator(load_discovery(reference_dir / "fcm" / "fcm.v1.json"))


@pytest.mark.parametrize("emergency", [False, True])
def test_push_payload_matches_the_discovery_schema(validator, emergency: bool) -> None:
    message = PushMessage("避難指示", "川崎区に避難指示", {"broadcast": "42"}, emergency=emergency)
    encoded = build_message_json(message)
    body = json.loads(_RequestBodies(encoded).for_token('tok:APA91b"quoted\\'))
    assert validator.violations(body) == []
    sent = body["message"]
    assert sent["token"] == 'tok:APA91b"quoted\\'
    assert "topic" not in sent
    assert sent["notification"] == {"title": "避難指示", "body": "川崎区に避難指示"}
    assert sent["data"] == {"broadcast": "42"}
    assert sent["android"]["priority"] == ("high" if emergency else "normal")
    assert sent["apns"]["headers"]["apns-priority"] == ("10" if emergency else "5")
    critical = sent["apns"]["payload"]["aps"].get("interruption-level") == "critical"
    assert critical is emergency


def test_empty_title_and_data_are_left_out(validator) -> None:
    encoded = build_message_json(PushMessage("", "本文のみ"))
    assert encoded["notification"] == {"body": "本文のみ"}
    assert "data" not in encoded
    assert validator.violations(json.loads(_RequestBodies(encoded).for_token("t:1234567"))) == []


def test_topic_data_message_is_background_priority_on_ios(validator) -> None:
    encoded = build_topic_data_json("city-mode", {"mode": "disaster"})
    assert validator.violations({"message": encoded}) == []
    assert encoded["topic"] == "city-mode" and "notification" not in encoded
    assert encoded["apns"]["headers"]["apns-priority"] == "5"
    assert encoded["apns"]["payload"]["aps"]["content-available"] == 1


def test_data_values_must_be_strings() -> None:
    from notify.errors import InvalidInput

    with pytest.raises(InvalidInput):
        build_message_json(PushMessage("t", "b", {"count": 3}))  # type: ignore[dict-item]
