"""A rule tree becomes one SQL predicate over `residents`, built to use the indexes.

Every leaf is either an `IN` over an indexed resident column (ward, language) or an
`EXISTS` over an indexed child table (children by birth_month_index, resident_topics by
(resident_id, topic), endpoints by (resident_id, channel)), so `NOT` stays correct (no NULLs)
and the planner can drive from whichever side is smaller. The same `Select` runs on SQLite and
PostgreSQL and is used inside `INSERT … SELECT` by the delivery engine to snapshot recipients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select, true

from notify.city import CityConfig
from notify.models import (
    Child,
    Consent,
    Endpoint,
    EndpointStatus,
    Resident,
    ResidentStatus,
    ResidentTopic,
)
from segments.rules import (
    AllOf,
    AnyOf,
    Channels,
    ChildAge,
    Languages,
    Not,
    Rule,
    Topics,
    Wards,
    parse_rule,
)


def month_index(day: dt.date) -> int:
    """The same encoding as `Child.birth_month_index`: year*12 + (month-1)."""
    return day.year * 12 + day.month - 1


def send_day(send_date: dt.date | dt.datetime, city: CityConfig) -> dt.date:
    """The calendar day a broadcast goes out, in the city's timezone."""
    if isinstance(send_date, dt.datetime):
        if send_date.tzinfo is None:
            raise ValueError("send_date must be timezone-aware")
        return send_date.astimezone(city.tz).date()
    return send_date


def usable_endpoint() -> ColumnElement[bool]:
    """An endpoint a message may go to: active and consented."""
    return and_(Endpoint.status == EndpointStatus.ACTIVE, Endpoint.consent == Consent.GRANTED)


def rule_predicate(rule: Rule, *, send_month: int) -> ColumnElement[bool]:
    if isinstance(rule, AllOf):
        return and_(true(), *(rule_predicate(r, send_month=send_month) for r in rule.rules))
    if isinstance(rule, AnyOf):
        return or_(false(), *(rule_predicate(r, send_month=send_month) for r in rule.rules))
    if isinstance(rule, Not):
        return not_(rule_predicate(rule.rule, send_month=send_month))
    if isinstance(rule, ChildAge):
        return _child_age(rule, send_month)
    if isinstance(rule, Wards):
        # ward_code may be NULL: keep the leaf two-valued so NOT(wards) includes them.
        return and_(Resident.ward_code.is_not(None), Resident.ward_code.in_(rule.codes))
    if isinstance(rule, Languages):
        return Resident.language.in_(rule.codes)
    if isinstance(rule, Topics):
        return exists().where(
            ResidentTopic.resident_id == Resident.id, ResidentTopic.topic.in_(rule.keys)
        )
    if isinstance(rule, Channels):
        return exists().where(
            Endpoint.resident_id == Resident.id,
            Endpoint.channel.in_(rule.channels),
            usable_endpoint(),
        )
    raise TypeError(f"unknown rule {rule!r}")


def _child_age(rule: ChildAge, send_month: int) -> ColumnElement[bool]:
    # age_months = send_month - birth_month_index, so min ≤ age ≤ max is a range on the index.
    latest_birth = send_month - rule.min.total_months
    conditions = [Child.resident_id == Resident.id, Child.birth_month_index <= latest_birth]
    if rule.max is not None:
        conditions.append(Child.birth_month_index >= send_month - rule.max.total_months)
    return exists().where(*conditions)


def topic_predicate(topic: str, *, city: CityConfig, emergency: bool) -> ColumnElement[bool]:
    """A broadcast on a topic reaches its subscribers; an emergency on an overridable topic
    reaches everyone."""
    info = city.topic(topic)
    if emergency and info is not None and info.overridable:
        return true()
    return exists().where(ResidentTopic.resident_id == Resident.id, ResidentTopic.topic == topic)


def segment_residents(
    rule: Rule | Mapping[str, Any],
    *,
    send_date: dt.date | dt.datetime,
    city: CityConfig,
    topic: str | None = None,
    emergency: bool = False,
) -> Select[int]:
    """`SELECT residents.id …` for the active residents the rule selects on `send_date`."""
    checked = parse_rule(rule, city)
    send_month = month_index(send_day(send_date, city))
    conditions = [
        Resident.status == ResidentStatus.ACTIVE,
        rule_predicate(checked, send_month=send_month),
    ]
    if topic is not None:
        conditions.append(topic_predicate(topic, city=city, emergency=emergency))
    return select(Resident.id).where(*conditions)
