"""A resident's profile: ward, language, children, topics, quiet hours, preferred channel.

One input model (`ProfileIn`) serves the LIFF form, the app and email sign-up. Its shape is
checked by pydantic; the values that depend on the city (ward codes, languages, topics) are
checked by `check_against_city`. Fields left out of a request keep their stored value;
`null` clears the optional ones. Children are birth year-month only (minimum personal data).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.city import CityConfig
from notify.db import utcnow
from notify.errors import InvalidInput, NotFound
from notify.models import Child, Resident, ResidentStatus, ResidentTopic

ChannelName = Literal["line", "fcm", "email"]
MAX_CHILDREN = 10
MAX_CHILD_AGE_YEARS = 25  # "children" for segments are 0-18; allow some slack, not adults


class ChildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    birth_year: int = Field(ge=1900, le=2200)
    birth_month: int = Field(ge=1, le=12)

    @model_validator(mode="after")
    def _plausible(self) -> ChildIn:
        today = dt.date.today()
        index = self.birth_year * 12 + self.birth_month - 1
        now = today.year * 12 + today.month - 1
        if index > now + 10:  # expected births (母子手帳) up to ~10 months ahead are allowed
            raise ValueError("生年月が先すぎます / birth month too far in the future")
        if now - index > MAX_CHILD_AGE_YEARS * 12:
            raise ValueError("子どもの生年月が古すぎます / birth month too long ago")
        return self

    @property
    def month_index(self) -> int:
        return self.birth_year * 12 + self.birth_month - 1


class QuietHoursIn(BaseModel):
    """Local times; start > end wraps past midnight (22:00-07:00)."""

    model_config = ConfigDict(extra="forbid")
    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("開始と終了が同じです / start and end must differ")
        return self


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ward_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    language: str | None = Field(default=None, max_length=8)
    children: list[ChildIn] | None = Field(default=None, max_length=MAX_CHILDREN)
    topics: list[str] | None = Field(default=None, max_length=64)
    quiet_hours: QuietHoursIn | None = None
    preferred_channel: ChannelName | None = None

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, topics: list[str] | None) -> list[str] | None:
        return None if topics is None else list(dict.fromkeys(topics))


class ChildOut(BaseModel):
    birth_year: int
    birth_month: int


class QuietHoursOut(BaseModel):
    start: str
    end: str


class ProfileOut(BaseModel):
    resident_id: str  # the public id; internal ids never leave the hub
    ward_code: str | None
    language: str
    children: list[ChildOut]
    topics: list[str]
    quiet_hours: QuietHoursOut | None
    preferred_channel: str | None


def check_against_city(profile: ProfileIn, city: CityConfig) -> None:
    """Raise InvalidInput naming every field whose value the city does not know."""
    fields: dict[str, str] = {}
    if profile.ward_code is not None and profile.ward_code not in city.ward_codes:
        fields["ward_code"] = "この市の区コードではありません / not a ward of this city"
    if profile.language is not None and profile.language not in city.language_codes:
        choices = ", ".join(sorted(city.language_codes))
        fields["language"] = f"対応していない言語です / unsupported language (choose: {choices})"
    for i, topic in enumerate(profile.topics or ()):
        if topic not in city.topic_keys:
            fields[f"topics.{i}"] = "不明なトピックです / unknown topic"
    if fields:
        raise InvalidInput("入力内容に誤りがあります / invalid input", fields=fields)


def validated(profile: ProfileIn | None, city: CityConfig) -> ProfileIn | None:
    if profile is not None:
        check_against_city(profile, city)
    return profile


def _minutes(value: dt.time) -> int:
    return value.hour * 60 + value.minute


def new_endpoint_token() -> str:
    """Opaque 16-character token for short per-endpoint URLs (unsubscribe, tracking)."""
    return secrets.token_urlsafe(12)


async def create_resident(session: AsyncSession, *, language: str = "ja") -> Resident:
    resident = Resident(public_id=str(uuid.uuid4()), language=language)
    session.add(resident)
    await session.flush()
    return resident


async def apply_profile(session: AsyncSession, resident: Resident, profile: ProfileIn) -> None:
    """Write the fields that were given (already checked against the city)."""
    given = profile.model_fields_set
    if "ward_code" in given:
        resident.ward_code = profile.ward_code
    if "language" in given and profile.language is not None:
        resident.language = profile.language
    if "quiet_hours" in given:
        quiet = profile.quiet_hours
        resident.quiet_start_min = None if quiet is None else _minutes(quiet.start)
        resident.quiet_end_min = None if quiet is None else _minutes(quiet.end)
    if "preferred_channel" in given:
        resident.preferred_channel = profile.preferred_channel
    if "children" in given:
        await session.execute(delete(Child).where(Child.resident_id == resident.id))
        for child in profile.children or ():
            session.add(
                Child(
                    resident_id=resident.id,
                    birth_year=child.birth_year,
                    birth_month=child.birth_month,
                    birth_month_index=child.month_index,
                )
            )
    if "topics" in given:
        await session.execute(delete(ResidentTopic).where(ResidentTopic.resident_id == resident.id))
        for topic in profile.topics or ():
            session.add(ResidentTopic(resident_id=resident.id, topic=topic))
    resident.status = ResidentStatus.ACTIVE
    resident.updated_at = utcnow()
    await session.flush()


async def load_resident(session: AsyncSession, resident_id: int) -> Resident:
    resident = await session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("登録が見つかりません / resident not found")
    return resident


async def profile_out(session: AsyncSession, resident: Resident) -> ProfileOut:
    children = (
        await session.execute(
            select(Child.birth_year, Child.birth_month)
            .where(Child.resident_id == resident.id)
            .order_by(Child.birth_month_index)
        )
    ).all()
    topics = (
        await session.scalars(
            select(ResidentTopic.topic)
            .where(ResidentTopic.resident_id == resident.id)
            .order_by(ResidentTopic.topic)
        )
    ).all()
    quiet = None
    if resident.quiet_start_min is not None and resident.quiet_end_min is not None:
        quiet = QuietHoursOut(
            start=_hhmm(resident.quiet_start_min), end=_hhmm(resident.quiet_end_min)
        )
    return ProfileOut(
        resident_id=resident.public_id,
        ward_code=resident.ward_code,
        language=resident.language,
        children=[ChildOut(birth_year=y, birth_month=m) for y, m in children],
        topics=list(topics),
        quiet_hours=quiet,
        preferred_channel=resident.preferred_channel,
    )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
