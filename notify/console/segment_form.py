"""The segment builder's form fields ↔ a segment rule (`segments.rules`).

The builder covers the everyday case: wards, child age range, languages and interests, all
required together (AND). A rule made through the API that the builder cannot show (OR, NOT,
nesting) is kept as is and described in words; the page never rewrites it silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from notify.city import CityConfig
from notify.errors import InvalidInput
from segments.rules import (
    AgeBound,
    AllOf,
    ChildAge,
    Languages,
    Rule,
    Topics,
    Wards,
    check_rule,
    parse_rule,
)

AGE_FIELDS = ("age_min_years", "age_min_months", "age_max_years", "age_max_months")


@dataclass(slots=True)
class SegmentForm:
    wards: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    interests: list[str] = field(default_factory=list)
    age: dict[str, str] = field(default_factory=lambda: dict.fromkeys(AGE_FIELDS, ""))
    advanced: dict[str, Any] | None = None  # a rule the builder cannot show, kept unchanged

    @property
    def has_age(self) -> bool:
        return any(self.age.values())


def _int(value: str, name: str, high: int, problems: dict[str, str]) -> int:
    if not value:
        return 0
    if not value.isdigit() or int(value) > high:
        problems[name] = f"0〜{high}の整数 / a whole number from 0 to {high}"
        return 0
    return int(value)


def rule_from_form(form: SegmentForm, city: CityConfig) -> Rule:
    """Build and check the rule; problems are named by form field."""
    if form.advanced is not None:
        return parse_rule(form.advanced, city)
    problems: dict[str, str] = {}
    rules: list[Rule] = []
    if form.wards:
        rules.append(Wards(codes=form.wards))
    if form.has_age:
        a = form.age
        low = AgeBound(
            years=_int(a["age_min_years"], "age_min_years", 30, problems),
            months=_int(a["age_min_months"], "age_min_months", 11, problems),
        )
        high = None
        if a["age_max_years"] or a["age_max_months"]:
            high = AgeBound(
                years=_int(a["age_max_years"], "age_max_years", 30, problems),
                months=_int(a["age_max_months"], "age_max_months", 11, problems),
            )
        if not problems:
            if high is not None and high.total_months < low.total_months:
                problems["age_max_years"] = (
                    "上限が下限より小さくなっています / the upper age is below the lower age"
                )
            rules.append(ChildAge(min=low, max=high))
    if form.languages:
        rules.append(Languages(codes=form.languages))
    if form.interests:
        rules.append(Topics(keys=form.interests))
    if problems:
        raise InvalidInput("配信対象の条件が不正です / invalid segment", fields=problems)
    rule = AllOf(rules=rules)
    check_rule(rule, city)
    return rule


def form_from_rule(data: dict[str, Any] | None, city: CityConfig) -> SegmentForm:
    rule = parse_rule(data or {}, city)
    form = SegmentForm()
    leaves = rule.rules if isinstance(rule, AllOf) else [rule]
    seen: set[str] = set()
    for leaf in leaves:
        if leaf.type in seen or not isinstance(leaf, Wards | ChildAge | Languages | Topics):
            return SegmentForm(advanced=data)
        seen.add(leaf.type)
        if isinstance(leaf, Wards):
            form.wards = list(leaf.codes)
        elif isinstance(leaf, Languages):
            form.languages = list(leaf.codes)
        elif isinstance(leaf, Topics):
            form.interests = list(leaf.keys)
        else:
            form.age = {
                "age_min_years": str(leaf.min.years),
                "age_min_months": str(leaf.min.months),
                "age_max_years": str(leaf.max.years) if leaf.max else "",
                "age_max_months": str(leaf.max.months) if leaf.max else "",
            }
    return form
