"""Before approval: every language × channel × ward renders within limits, and LINE agrees."""

from __future__ import annotations

from typing import Any

from notify.city import CityConfig
from notify.compose.checks import check_renderings, line_validator, validate_on_line
from notify.compose.content import parse_content
from sandbox.line import SANDBOX_TOKEN

from .test_render import FLEX


def test_every_ward_and_language_is_rendered(city: CityConfig) -> None:
    # Only one ward's name makes the text too long: the check must still find it.
    content = parse_content(
        {
            "ja": {
                "title": "t",
                "body": "本文{% if resident.ward_code == '141372' %}" + "長" * 4998 + "{% endif %}",
            },
            "en": {"title": "t", "body": "{{ resident.ward }} info"},
        }
    )
    result = check_renderings(content, channels=["line", "email"], city=city)
    assert list(result.problems) == ["content.ja.line.messages.0.text"]
    assert "(ward 141372)" in result.problems["content.ja.line.messages.0.text"]
    assert set(result.line_messages) == {"ja", "en"}  # one rendering per language for LINE


def test_clean_content_has_no_problems(city: CityConfig) -> None:
    content = parse_content({"ja": {"title": "t", "body": "{{ resident.ward or '市内' }}"}})
    result = check_renderings(content, channels=["line", "fcm", "email"], city=city)
    assert result.problems == {}
    assert result.line_messages["ja"].messages[0]["text"] == "t\n\n川崎区"


async def test_line_validates_each_language_on_the_wire(
    city: CityConfig, line_sandbox: Any
) -> None:
    content = parse_content(
        {
            "ja": {"title": "t", "body": "b", "line": {"messages": [FLEX]}},
            "en": {"title": "t", "body": "b"},
        }
    )
    result = check_renderings(content, channels=["line"], city=city, title="健診")
    assert result.problems == {}
    async with line_validator(line_sandbox.url, SANDBOX_TOKEN) as line:
        assert await validate_on_line(line, result.line_messages) == {}
        sent = line_sandbox.base.log.entries(path="/v2/bot/message/validate/multicast")
        assert len(sent) == 2
        # a Flex LINE refuses (an unknown component type) is reported on that language
        broken = {
            **FLEX,
            "contents": {
                "type": "bubble",
                "body": {"type": "box", "layout": "diagonal", "contents": []},
            },
        }
        bad = check_renderings(
            parse_content({"ja": {"title": "t", "body": "b", "line": {"messages": [broken]}}}),
            channels=["line"],
            city=city,
            title="健診",
        )
        assert bad.problems == {}  # locally fine: only LINE knows the layout is wrong
        problems = await validate_on_line(line, bad.line_messages)
        assert list(problems) == ["content.ja.line"]
        assert "LINE rejected" in problems["content.ja.line"]
        assert "layout" in problems["content.ja.line"]


async def test_line_outage_is_not_blamed_on_the_content(city: CityConfig) -> None:
    content = parse_content({"ja": {"title": "t", "body": "b"}})
    result = check_renderings(content, channels=["line"], city=city)
    async with line_validator("http://127.0.0.1:9", "x") as line:
        problems = await validate_on_line(line, result.line_messages)
    assert list(problems) == ["line_validation"]


async def test_a_bad_token_is_not_blamed_on_the_content(
    city: CityConfig, line_sandbox: Any
) -> None:
    content = parse_content({"ja": {"title": "t", "body": "b"}})
    result = check_renderings(content, channels=["line"], city=city)
    async with line_validator(line_sandbox.url, "wrong-token") as line:
        problems = await validate_on_line(line, result.line_messages)
    assert list(problems) == ["line_validation"]
