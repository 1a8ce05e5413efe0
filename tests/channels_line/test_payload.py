"""The multicast payload: a pure function, checked against LINE's OpenAPI schema and the wire."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from channels.base import LineMessage, SendContext
from channels.line import LineChannel, build_multicast_body
from notify.errors import InvalidInput
from sandbox.line.spec import LineSpec

from .helpers import TEXT, Line, recipients, users

FLEX = {
    "type": "flex",
    "altText": "避難情報",
    "contents": {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {"type": "text", "text": "高齢者等避難", "weight": "bold", "size": "xl"},
                {"type": "text", "text": "中原区・高津区", "wrap": True},
            ],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "action": {"type": "uri", "label": "詳しく", "uri": "https://example.jp/a"},
                }
            ],
        },
    },
}
MESSAGES: list[tuple[dict[str, Any], ...]] = [
    ({"type": "text", "text": "お知らせ"},),
    (FLEX,),
    ({"type": "text", "text": "1"}, {"type": "sticker", "packageId": "446", "stickerId": "1988"}),
    (
        {
            "type": "image",
            "originalContentUrl": "https://example.jp/a.png",
            "previewImageUrl": "https://example.jp/a_s.png",
        },
    ),
]


@pytest.fixture(scope="module")
def schema(reference_dir: Path) -> Any:
    spec = LineSpec(reference_dir / "line-openapi")
    return spec.schema_validator("messaging-api.yml", "MulticastRequest")


@pytest.mark.parametrize("messages", MESSAGES)
@pytest.mark.parametrize("unit", [None, "bc12_ward3"])
def test_body_matches_the_openapi_schema(schema: Any, messages: tuple, unit: str | None) -> None:
    context = SendContext(broadcast_id=12, idempotency_key=str(uuid.uuid4()), aggregation_unit=unit)
    body = build_multicast_body(users(500), LineMessage(messages=messages), context)
    assert list(schema.iter_errors(body)) == []
    assert body["to"] == users(500)
    assert body["messages"] == list(messages)
    assert body.get("customAggregationUnits") == ([unit] if unit else None)


def test_the_schema_check_is_not_blind(schema: Any) -> None:
    body = build_multicast_body(users(1), TEXT, SendContext(broadcast_id=1))
    assert list(schema.iter_errors(dict(body, messages=[{"type": "text"}])))


@pytest.mark.parametrize(
    ("ids", "messages", "unit"),
    [
        ([], TEXT.messages, None),
        (users(501), TEXT.messages, None),
        (users(1), (), None),
        (users(1), TEXT.messages * 6, None),
        (users(1), TEXT.messages, "ward-3"),
        (users(1), TEXT.messages, "x" * 31),
    ],
)
def test_limits_are_enforced_before_sending(ids: list, messages: tuple, unit: str | None) -> None:
    with pytest.raises(InvalidInput):
        build_multicast_body(
            ids, LineMessage(messages=messages), SendContext(broadcast_id=1, aggregation_unit=unit)
        )


@pytest.mark.parametrize("messages", MESSAGES)
async def test_what_crosses_the_wire_is_the_built_body(
    channel: LineChannel, line: Line, messages: tuple
) -> None:
    message = LineMessage(messages=messages)
    context = SendContext(
        broadcast_id=3, idempotency_key=str(uuid.uuid4()), aggregation_unit="bc3_all"
    )
    results = await channel.send_batch(recipients(users(3)), message, context)
    assert {r.outcome for r in results} == {"sent"}
    [entry] = (await line.control("GET", "log", params={"path": "/v2/bot/message"}))["entries"]
    assert entry["body"] == build_multicast_body(users(3), message, context)
    assert entry["headers"]["x-line-retry-key"] == context.idempotency_key


def test_channel_limits_are_class_attributes() -> None:
    assert LineChannel.name == "line"
    assert (LineChannel.max_batch, LineChannel.max_body_chars) == (500, 5000)
    assert LineChannel.supports_title is False
