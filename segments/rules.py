"""The segment rule tree, stored as JSON in `Broadcast.segment`.

    {"type": "all", "rules": [
        {"type": "child_age", "min": {"years": 3}, "max": {"years": 5, "months": 11}},
        {"type": "wards", "codes": ["141313", "141321"]},
        {"type": "languages", "codes": ["ja"]},
        {"type": "not", "rule": {"type": "topics", "keys": ["events"]}}]}

Leaves: `child_age` (a resident matches if any child does, age taken on the send date),
`wards` (official codes), `languages`, `topics` (subscribed to any), `channels` (has an
active, consented endpoint on any). Combinators: `all`, `any`, `not`. `{"type": "all",
"rules": []}` is everyone.

Pydantic checks the shape; `check_rule` checks the rule against the city (unknown ward,
language or topic, upside-down age range) and names the field path, in pydantic's own
location format (`segment.all.rules.0.child_age.max`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notify.city import CityConfig
from notify.errors import InvalidInput
from notify.web.errors import fields_from_validation

MAX_DEPTH = 8
MAX_NODES = 100
CHANNEL_NAMES = ("line", "fcm", "email")


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgeBound(_Node):
    years: int = Field(default=0, ge=0, le=30)
    months: int = Field(default=0, ge=0, le=11)

    @property
    def total_months(self) -> int:
        return self.years * 12 + self.months


class ChildAge(_Node):
    """Age in whole months on the send date: (send year-month) − (birth year-month)."""

    type: Literal["child_age"] = "child_age"
    min: AgeBound = AgeBound()
    max: AgeBound | None = None  # None: no upper bound


class Wards(_Node):
    type: Literal["wards"] = "wards"
    codes: list[str] = Field(min_length=1, max_length=50)


class Languages(_Node):
    type: Literal["languages"] = "languages"
    codes: list[str] = Field(min_length=1, max_length=50)


class Topics(_Node):
    type: Literal["topics"] = "topics"
    keys: list[str] = Field(min_length=1, max_length=50)


class Channels(_Node):
    type: Literal["channels"] = "channels"
    channels: list[Literal["line", "fcm", "email"]] = Field(min_length=1, max_length=3)


class AllOf(_Node):
    type: Literal["all"] = "all"
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_NODES)


class AnyOf(_Node):
    type: Literal["any"] = "any"
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_NODES)


class Not(_Node):
    type: Literal["not"] = "not"
    rule: Rule


Rule = Annotated[
    AllOf | AnyOf | Not | ChildAge | Wards | Languages | Topics | Channels,
    Field(discriminator="type"),
]
Leaf = ChildAge | Wards | Languages | Topics | Channels

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


class Segment(BaseModel):
    """Wrapper so a bare rule can be validated and dumped (`Segment(rule=...)`)."""

    rule: Rule


EVERYONE: Rule = AllOf(rules=[])


def parse_rule(data: Any, city: CityConfig, *, path: str = "segment") -> Rule:
    """Validate JSON (or an already-built rule) into a checked rule tree."""
    if isinstance(data, _Node):
        rule: Rule = data  # type: ignore[assignment]
    else:
        if data is None or data == {}:
            return EVERYONE
        try:
            rule = Segment.model_validate({"rule": data}).rule
        except ValidationError as exc:
            fields = {
                path + key.removeprefix("rule"): reason
                for key, reason in fields_from_validation(exc).items()
            }
            raise InvalidInput(
                "配信対象の条件が不正です / invalid segment rule", fields=fields
            ) from exc
    check_rule(rule, city, path=path)
    return rule


def check_rule(rule: Rule, city: CityConfig, *, path: str = "segment") -> None:
    problems: dict[str, str] = {}
    nodes = _walk(rule, f"{path}.{rule.type}", 1, problems, city)
    if nodes > MAX_NODES:
        problems.setdefault(path, f"too many conditions ({nodes} > {MAX_NODES})")
    if problems:
        raise InvalidInput("配信対象の条件が不正です / invalid segment rule", fields=problems)


def _walk(rule: Rule, at: str, depth: int, problems: dict[str, str], city: CityConfig) -> int:
    if depth > MAX_DEPTH:
        problems.setdefault(at, f"nested deeper than {MAX_DEPTH} levels")
        return 1
    if isinstance(rule, AllOf | AnyOf):
        return 1 + sum(
            _walk(child, f"{at}.rules.{i}.{child.type}", depth + 1, problems, city)
            for i, child in enumerate(rule.rules)
        )
    if isinstance(rule, Not):
        return 1 + _walk(rule.rule, f"{at}.rule.{rule.rule.type}", depth + 1, problems, city)
    _check_leaf(rule, at, problems, city)
    return 1


def _check_leaf(rule: Leaf, at: str, problems: dict[str, str], city: CityConfig) -> None:
    if isinstance(rule, ChildAge):
        if rule.max is not None and rule.max.total_months < rule.min.total_months:
            problems[f"{at}.max"] = (
                f"上限が下限より小さい / upper bound {rule.max.years}y{rule.max.months}m is "
                f"below lower bound {rule.min.years}y{rule.min.months}m"
            )
    elif isinstance(rule, Wards):
        _unknown(rule.codes, city.ward_codes, f"{at}.codes", "ward code", problems)
    elif isinstance(rule, Languages):
        _unknown(rule.codes, city.language_codes, f"{at}.codes", "language", problems)
    elif isinstance(rule, Topics):
        _unknown(rule.keys, city.topic_keys, f"{at}.keys", "topic", problems)


def _unknown(
    values: list[str], known: frozenset[str], at: str, what: str, problems: dict[str, str]
) -> None:
    for i, value in enumerate(values):
        if value not in known:
            problems[f"{at}.{i}"] = f"unknown {what} {value!r} (known: {', '.join(sorted(known))})"


def rule_to_json(rule: Rule) -> dict[str, Any]:
    return Segment(rule=rule).model_dump(mode="json")["rule"]


def describe(rule: Rule, city: CityConfig) -> str:
    """A short Japanese description for lists and audit entries."""
    if isinstance(rule, AllOf):
        return " かつ ".join(describe(r, city) for r in rule.rules) or "全員"
    if isinstance(rule, AnyOf):
        return "(" + " または ".join(describe(r, city) for r in rule.rules) + ")"
    if isinstance(rule, Not):
        return f"({describe(rule.rule, city)}) 以外"
    if isinstance(rule, ChildAge):
        upper = f"{rule.max.years}歳{rule.max.months}か月" if rule.max else ""
        return f"子ども {rule.min.years}歳{rule.min.months}か月〜{upper}"
    if isinstance(rule, Wards):
        return "区: " + "・".join((w.ja if (w := city.ward(c)) else c) for c in rule.codes)
    if isinstance(rule, Languages):
        return "言語: " + ",".join(rule.codes)
    if isinstance(rule, Topics):
        return "話題: " + ",".join(rule.keys)
    return "経路: " + ",".join(rule.channels)
