"""config/jma.yaml: which JMA areas are (parts of) the city, and which telegrams act.

JMA's areas are not the city's wards: warnings treat 川崎市 (1413000) as one area, landslide
alerts split 相模原市 into 東部/西部, earthquake reports list each ward. So the city says,
by JMA code, which of its wards each JMA area covers. Regions (神奈川県東部 ...) also contain
other cities: they are listed apart and can at most lead to a proposal. Matching is by
codes only; names are there for people reading the file.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from notify.errors import ConfigError
from notify.jma.telegram import Intensity, TelegramKind


class RuleAction(StrEnum):
    PROPOSE = "propose"  # disaster staff are asked to switch
    AUTO_SWITCH = "auto_switch"  # the hub switches at once (if settings allow)


class AreaMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^\d{3,7}$")  # JMA area code
    ja: str  # for readers of the file; never used for matching
    wards: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ward_codes(self) -> AreaMapping:
        for ward in self.wards:
            if not (len(ward) == 6 and ward.isdigit()):
                raise ValueError(f"ward code {ward!r} is not a 6-digit local-government code")
        return self


class Rule(BaseModel):
    """When a telegram of `telegram` kind shows one of `kind_codes` (or ≥ `min_intensity`)
    in force in the city, `action` with the prepared emergency `template`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    ja: str
    en: str
    telegram: Literal[
        TelegramKind.WEATHER_WARNING,
        TelegramKind.LANDSLIDE_ALERT,
        TelegramKind.SEISMIC,
        TelegramKind.RIVER_FLOOD,
    ]
    kind_codes: tuple[str, ...] = ()
    # Codes whose 解除 (or, for a downgrade without <LastKind>, whose status starting with
    # `lifted_by_status_prefix`) mean this rule's condition ended. "*" = any 解除.
    lifted_by_codes: tuple[str, ...] = ()
    lifted_by_status_prefix: str = "特別警報から"
    min_intensity: Intensity | None = None
    action: RuleAction
    region_action: Literal["ignore", "propose"] = "ignore"
    template: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")

    @model_validator(mode="after")
    def _condition(self) -> Rule:
        if self.telegram is TelegramKind.SEISMIC:
            if self.min_intensity is None or self.kind_codes:
                raise ValueError(f"rule {self.key}: seismic rules need min_intensity only")
        elif not self.kind_codes or self.min_intensity is not None:
            raise ValueError(f"rule {self.key}: warning rules need kind_codes only")
        return self


class CityAreas(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ja: str
    en: str
    areas: tuple[AreaMapping, ...] = Field(min_length=1)
    regions: tuple[AreaMapping, ...] = ()
    rules: tuple[Rule, ...] | None = None  # None: the file's shared rules

    @model_validator(mode="after")
    def _unique_codes(self) -> CityAreas:
        codes = [a.code for a in (*self.areas, *self.regions)]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{self.ja}: a JMA area code is listed twice")
        return self

    def area_wards(self, code: str) -> tuple[str, ...]:
        """Wards covered by a JMA area that is this city or a part of it; () otherwise."""
        return next((a.wards for a in self.areas if a.code == code), ())

    def region_wards(self, code: str) -> tuple[str, ...]:
        """Wards inside a JMA region that also holds other cities; () otherwise."""
        return next((a.wards for a in self.regions if a.code == code), ())

    @property
    def ward_codes(self) -> tuple[str, ...]:
        """Every ward the mapping names, in first-mention order."""
        return tuple(dict.fromkeys(w for a in (*self.areas, *self.regions) for w in a.wards))


class JmaConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    rules: tuple[Rule, ...] = Field(min_length=1)
    cities: dict[str, CityAreas] = Field(min_length=1)

    @model_validator(mode="after")
    def _checks(self) -> JmaConfig:
        for code in self.cities:
            if not (len(code) == 6 and code.isdigit()):
                raise ValueError(f"city key {code!r} is not a 6-digit local-government code")
        for rules in (self.rules, *(c.rules for c in self.cities.values() if c.rules)):
            keys = [r.key for r in rules]
            if len(set(keys)) != len(keys):
                raise ValueError("rule keys must be unique")
        return self

    def city(self, city_code: str, *, ward_codes: frozenset[str] | None = None) -> CityAreas:
        """The mapping for one city; with `ward_codes` (from the city config) it must agree."""
        city = self.cities.get(city_code)
        if city is None:
            raise ConfigError(f"config/jma.yaml has no section for city {city_code}")
        if ward_codes is not None:
            unknown = set(city.ward_codes) - ward_codes
            if unknown:
                raise ConfigError(
                    f"config/jma.yaml maps JMA areas of {city_code} to unknown wards "
                    f"{sorted(unknown)}"
                )
        return city

    def rules_for(self, city_code: str) -> tuple[Rule, ...]:
        city = self.city(city_code)
        return city.rules if city.rules is not None else self.rules


def load_jma_config(path: Path) -> JmaConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read JMA config {path}: {exc}") from exc
    try:
        return JmaConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid JMA config {path}: {exc}") from exc
