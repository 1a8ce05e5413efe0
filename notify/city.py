"""City configuration (config/<city>.yaml): name, wards with official codes, topics, languages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from notify.errors import ConfigError


class Names(BaseModel):
    model_config = ConfigDict(frozen=True)
    ja: str
    en: str


class Ward(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str = Field(pattern=r"^\d{6}$")
    ja: str
    en: str
    population: int = Field(default=100_000, gt=0)


class Language(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str = Field(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    ja: str
    en: str


class Topic(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    ja: str
    en: str
    overridable: bool = False  # emergency broadcasts reach residents who opted out


class QuietHours(BaseModel):
    model_config = ConfigDict(frozen=True)
    start: dt.time
    end: dt.time


class CityInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str = Field(pattern=r"^\d{6}$")
    name: Names
    prefecture: Names
    timezone: str = "Asia/Tokyo"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value


class CityConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    city: CityInfo
    wards: tuple[Ward, ...] = Field(min_length=1)
    languages: tuple[Language, ...] = Field(min_length=1)
    topics: tuple[Topic, ...] = ()
    default_quiet_hours: QuietHours | None = None

    @field_validator("wards")
    @classmethod
    def _unique_wards(cls, wards: tuple[Ward, ...]) -> tuple[Ward, ...]:
        codes = [w.code for w in wards]
        if len(set(codes)) != len(codes):
            raise ValueError("ward codes must be unique")
        return wards

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.city.timezone)

    @property
    def ward_codes(self) -> frozenset[str]:
        return frozenset(w.code for w in self.wards)

    @property
    def language_codes(self) -> frozenset[str]:
        return frozenset(lang.code for lang in self.languages)

    @property
    def topic_keys(self) -> frozenset[str]:
        return frozenset(t.key for t in self.topics)

    def ward(self, code: str) -> Ward | None:
        return next((w for w in self.wards if w.code == code), None)

    def topic(self, key: str) -> Topic | None:
        return next((t for t in self.topics if t.key == key), None)


def load_city(path: Path) -> CityConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read city config {path}: {exc}") from exc
    try:
        return CityConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid city config {path}: {exc}") from exc
