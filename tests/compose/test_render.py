"""render_message: per channel, per language, within limits, errors naming the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from channels.base import EmailMessage, LineMessage, PushMessage
from notify.city import CityConfig
from notify.compose.content import parse_content
from notify.compose.context import message_context
from notify.compose.render import render_message
from notify.errors import InvalidInput, TemplateError

CONTENT: dict[str, Any] = {
    "ja": {
        "title": "乳幼児健診のお知らせ",
        "body": "{{ resident.ward }}にお住まいの方へ\n受付は9時から。\n\n持ち物: 母子手帳",
        "url": "https://www.city.kawasaki.jp/k",
    },
    "en": {"title": "Check-ups", "body": "For residents of {{ resident.ward }}."},
    "zh": {"title": "体检通知", "body": "{{ resident.ward }}"},
}

FLEX = {
    "type": "flex",
    "altText": "{{ broadcast.title }}",
    "contents": {
        "type": "bubble",
        "body": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "text",
                    "text": "{{ resident.ward }}のお知らせ",
                    "weight": "bold",
                    "size": "xl",
                },
                {"type": "text", "text": "{{ broadcast.send_date }}", "wrap": True},
            ],
        },
        "footer": {
            "type": "box",
            "layout": "vertical",
            "contents": [
                {
                    "type": "button",
                    "style": "primary",
                    "action": {
                        "type": "uri",
                        "label": "詳しく",
                        "uri": "https://www.city.kawasaki.jp/",
                    },
                }
            ],
        },
    },
}


def fields(exc_info: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return exc_info.value.fields


def test_line_default_is_one_text_message(ctx: dict[str, Any]) -> None:
    message = render_message(CONTENT, "line", "ja", ctx)
    assert message == LineMessage(
        messages=(
            {
                "type": "text",
                "text": "乳幼児健診のお知らせ\n\n川崎区にお住まいの方へ\n受付は9時から。\n\n"
                "持ち物: 母子手帳\n\nhttps://www.city.kawasaki.jp/k",
            },
        )
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.messages = ()  # type: ignore[misc]


def test_push_default_and_override(ctx: dict[str, Any]) -> None:
    push = render_message(CONTENT, "fcm", "ja", ctx)
    assert isinstance(push, PushMessage)
    assert push.title == "乳幼児健診のお知らせ"
    assert push.body.startswith("川崎区にお住まいの方へ")
    assert push.data == {"broadcast_id": "7", "url": "https://www.city.kawasaki.jp/k"}
    assert push.emergency is False
    long_body = {"ja": {"title": "t", "body": "あ" * 500}}
    assert render_message(long_body, "fcm", "ja", ctx).body == "あ" * 199 + "…"  # type: ignore[union-attr]
    custom = {
        "ja": {
            "title": "t",
            "body": "b",
            "push": {"body": "短く {{ resident.ward }}", "data": {"screen": "news"}},
        }
    }
    push = render_message(custom, "fcm", "ja", ctx)
    assert (push.title, push.body, push.data["screen"]) == ("t", "短く 川崎区", "news")  # type: ignore[union-attr]


def test_emergency_flag_comes_from_the_broadcast(city: CityConfig) -> None:
    ctx = message_context(city, priority="emergency")
    push = render_message(CONTENT, "fcm", "ja", ctx)
    assert isinstance(push, PushMessage) and push.emergency
    email = render_message(CONTENT, "email", "ja", ctx)
    assert isinstance(email, EmailMessage) and "緊急" in (email.html or "")


def test_email_parts_escape_and_sanitise(city: CityConfig) -> None:
    ctx = message_context(city, ward_code="141321")
    content = {"ja": {"title": "件名 {{ resident.ward }}", "body": "<b>本文</b>\n2行目"}}
    email = render_message(content, "email", "ja", ctx)
    assert isinstance(email, EmailMessage)
    assert email.subject == "件名 幸区"
    assert email.text == "<b>本文</b>\n2行目"
    assert "<p>&lt;b&gt;本文&lt;/b&gt;<br>\n2行目</p>" in (email.html or "")
    staff_html = {
        "ja": {
            "title": "t",
            "body": "b",
            "email": {
                "html": '<p onclick="x()">{{ resident.ward }}<script>alert(1)</script>'
                '<a href="javascript:alert(1)">x</a><a href="https://ok.example">y</a></p>'
            },
        }
    }
    html = render_message(staff_html, "email", "ja", ctx).html  # type: ignore[union-attr]
    assert "幸区" in html and "<script" not in html and "onclick" not in html
    assert "javascript:" not in html and 'href="https://ok.example"' in html


def test_language_fallback(ctx: dict[str, Any], city: CityConfig) -> None:
    en = message_context(city, language="en", ward_code="141313")
    assert render_message(CONTENT, "line", "en", en).messages[0]["text"] == (  # type: ignore[union-attr]
        "Check-ups\n\nFor residents of Kawasaki-ku."
    )
    vi = render_message(CONTENT, "line", "vi", ctx)
    assert vi.messages[0]["text"].startswith("乳幼児健診のお知らせ")  # type: ignore[union-attr]
    zh_tw = render_message(CONTENT, "line", "zh-TW", ctx)
    assert zh_tw.messages[0]["text"] == "体检通知\n\n川崎区"  # type: ignore[union-attr]


def test_errors_name_the_field(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as info:
        render_message({"ja": {"title": "t", "body": "{{ resident.nam }}"}}, "line", "ja", ctx)
    assert list(fields(info)) == ["content.ja.body"]
    with pytest.raises(TemplateError) as info:
        parse_content({"ja": {"title": "t", "body": "b", "email": {"subject": "{% if %}"}}})
    assert "content.ja.email.subject" in fields(info)
    with pytest.raises(InvalidInput) as info:
        parse_content({"en": {"title": "t", "body": "b"}})
    assert "a Japanese version" in fields(info)["content"]
    with pytest.raises(InvalidInput) as info:
        render_message(
            {"ja": {"title": "t", "body": "b", "url": "javascript:alert(1)"}}, "line", "ja", ctx
        )
    assert "content.ja.url" in fields(info)


def test_limits_are_enforced_per_channel(ctx: dict[str, Any]) -> None:
    # 2,500 emoji are 5,000 UTF-16 units: with the title that is over LINE's limit.
    too_long = {"ja": {"title": "t", "body": "😀" * 2500}}
    with pytest.raises(InvalidInput) as info:
        render_message(too_long, "line", "ja", ctx)
    assert "the limit is 5000" in fields(info)["content.ja.line.messages.0.text"]
    with pytest.raises(InvalidInput) as info:
        render_message({"ja": {"title": "題" * 101, "body": "b"}}, "fcm", "ja", ctx)
    assert "content.ja.push.title" in fields(info)
    with pytest.raises(InvalidInput) as info:
        render_message(
            {"ja": {"title": "t", "body": "b", "email": {"subject": "a\nBcc: x"}}},
            "email",
            "ja",
            ctx,
        )
    assert fields(info)["content.ja.email.subject"] == "must be one line"
    with pytest.raises(InvalidInput) as info:
        parse_content(
            {
                "ja": {
                    "title": "t",
                    "body": "b",
                    "line": {"messages": [{"type": "text", "text": "x"}] * 6},
                }
            }
        )
    assert "content.ja.line.messages" in fields(info)


def test_flex_templates_render_and_match_lines_schema(
    ctx: dict[str, Any], reference_dir: Path
) -> None:
    from sandbox.line.spec import LineSpec

    content = {
        "ja": {
            "title": "t",
            "body": "b",
            "line": {"messages": [{"type": "text", "text": "{{ city.name }}"}, FLEX]},
        }
    }
    message = render_message(content, "line", "ja", ctx)
    assert isinstance(message, LineMessage)
    text, flex = message.messages
    assert text == {"type": "text", "text": "川崎市"}
    assert flex["altText"] == "t"
    assert flex["contents"]["body"]["contents"][0]["text"] == "川崎区のお知らせ"
    spec = LineSpec(reference_dir / "line-openapi")
    validator = spec.schema_validator("messaging-api.yml", "Message")
    for item in message.messages:
        assert list(validator.iter_errors(dict(item))) == []
    # the schema check is real: a layout LINE does not know is caught
    broken = {
        **flex,
        "contents": {
            **flex["contents"],
            "body": {"type": "box", "layout": "diagonal", "contents": []},
        },
    }
    assert list(validator.iter_errors(broken))


def test_flex_errors_name_the_json_path(ctx: dict[str, Any]) -> None:
    bad = {
        **FLEX,
        "contents": {
            **FLEX["contents"],
            "header": {
                "type": "box",
                "layout": "vertical",
                "contents": [{"type": "text", "text": "{{ nope }}"}],
            },
        },
    }
    with pytest.raises(TemplateError) as info:
        render_message(
            {"ja": {"title": "t", "body": "b", "line": {"messages": [bad]}}}, "line", "ja", ctx
        )
    assert list(fields(info)) == ["content.ja.line.messages.0.contents.header.contents.0.text"]


def test_rendering_is_pure(ctx: dict[str, Any]) -> None:
    first = render_message(CONTENT, "email", "ja", ctx)
    assert render_message(CONTENT, "email", "ja", dict(ctx)) == first
