"""The OpenAPI validator behind the simulator: discriminators, nullable, the memo, queries."""

from __future__ import annotations

from pathlib import Path

from sandbox.line.spec import LineSpec

MULTICAST = ("POST", "/v2/bot/message/multicast")


def ids(n: int) -> list[str]:
    return [f"U{i:032x}" for i in range(n)]


def test_discriminated_messages_are_checked_against_their_own_schema(spec_dir: Path) -> None:
    spec = LineSpec(spec_dir)
    template = {
        "type": "template",
        "altText": "確認",
        "template": {"type": "confirm", "text": "参加しますか", "actions": [{"type": "nope"}]},
    }
    details = spec.body_details(*MULTICAST, {"to": ids(1), "messages": [template]})
    assert [d["property"] for d in details] == ["messages[0].template.actions[0].type"]
    good = dict(template, template=dict(template["template"], actions=[]))
    assert spec.body_details(*MULTICAST, {"to": ids(1), "messages": [good]}) == []


def test_the_valid_body_memo_never_hides_an_error(spec_dir: Path) -> None:
    spec = LineSpec(spec_dir)
    body = {"to": ids(3), "messages": [{"type": "text", "text": "x"}]}
    assert spec.body_details(*MULTICAST, body) == []
    assert spec.body_details(*MULTICAST, dict(body, to=ids(2))) == []  # memo hit
    assert spec.body_details(*MULTICAST, dict(body, to=[*ids(2), 5]))  # not all strings
    assert spec.body_details(*MULTICAST, dict(body, to=ids(501)))  # size still checked
    assert spec.body_details(*MULTICAST, dict(body, customAggregationUnits=["a-b"]))


def test_nullable_and_query_parameters(spec_dir: Path) -> None:
    spec = LineSpec(spec_dir)
    overview = spec.schema_validator("insight.yml", "GetStatisticsPerUnitResponseOverview")
    assert list(overview.iter_errors({"uniqueImpression": None, "uniqueClick": 3})) == []
    assert list(overview.iter_errors({"uniqueImpression": "3"}))
    followers = ("GET", "/v2/bot/followers/ids")
    assert spec.query_details(*followers, {"limit": "300"}) == []
    assert spec.query_details(*followers, {"limit": "many"})[0]["property"] == "limit"
    assert spec.query_details(*followers, {"limit": "5000"})[0]["property"] == "limit"
    progress = ("GET", "/v2/bot/richmenu/progress/batch")
    assert spec.query_details(*progress, {}) == [
        {"message": "must be specified", "property": "requestId"}
    ]
