"""Typed, frozen values parsed from a JMA disaster-prevention XML telegram.

Only what the disaster-mode rules need is kept: the telegram's identity (kind, status,
InfoType, EventID, report time) and, per JMA area code, the warning kinds with their
status, or the maximum seismic intensity. Areas are identified by JMA's codes; names are
kept for display only (names are ambiguous: 宮城川崎町 is not 川崎市).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class TelegramKind(StrEnum):
    WEATHER_WARNING = "weather_warning"  # VPWW53 / VPWW54 / VPWW55
    LANDSLIDE_ALERT = "landslide_alert"  # VXWW50 土砂災害警戒情報
    SEISMIC = "seismic"  # VXSE51 震度速報 / VXSE52 震源 / VXSE53 震源・震度
    RIVER_FLOOD = "river_flood"  # VXKOii 指定河川洪水予報
    UNSUPPORTED = "unsupported"  # a valid JMA telegram of another kind


class InfoType(StrEnum):
    ISSUED = "発表"
    CORRECTED = "訂正"
    DELAYED = "遅延"
    CANCELLED = "取消"


class TelegramStatus(StrEnum):
    NORMAL = "通常"
    DRILL = "訓練"  # never triggers a real switch
    TEST = "試験"  # never triggers a real switch


class AreaScope(StrEnum):
    """How big a JMA area is; only CITY-sized areas (or parts of one city) are cities."""

    PREFECTURE = "prefecture"  # 府県予報区 / 地震情報／都道府県等
    REGION = "region"  # 一次細分区域, 市町村等をまとめた地域, 地震情報／細分区域: several cities
    CITY = "city"  # 市町村等 (a city, one ward, or one part of a city)


class EntryState(StrEnum):
    """The state of one warning kind in one area, from the entry's <Status>."""

    ISSUED = "issued"  # 発表
    CONTINUING = "continuing"  # 継続
    TRANSITION = "transition"  # 特別警報から警報, 警報から注意報 ...: this kind is now in force
    CLEARED = "cleared"  # 解除
    NONE = "none"  # なし, 発表警報・注意報はなし

    @property
    def in_force(self) -> bool:
        return self in (EntryState.ISSUED, EntryState.CONTINUING, EntryState.TRANSITION)


def entry_state(status: str) -> EntryState:
    """Map JMA's <Status> words; an unknown word counts as in force (the safe side)."""
    if not status or status == "なし" or "はなし" in status:
        return EntryState.NONE
    if status == "解除":
        return EntryState.CLEARED
    if status == "発表":
        return EntryState.ISSUED
    if status == "継続":
        return EntryState.CONTINUING
    return EntryState.TRANSITION


class Intensity(StrEnum):
    """JMA seismic intensity (震度) as written in <MaxInt>."""

    I1 = "1"
    I2 = "2"
    I3 = "3"
    I4 = "4"
    I5_LOWER = "5-"
    I5_UPPER = "5+"
    I6_LOWER = "6-"
    I6_UPPER = "6+"
    I7 = "7"

    @property
    def rank(self) -> int:
        return list(Intensity).index(self)

    def at_least(self, other: Intensity) -> bool:
        return self.rank >= other.rank

    @property
    def label_ja(self) -> str:
        return _INTENSITY_JA[self]

    @property
    def label_en(self) -> str:
        return "intensity " + self.value.replace("-", " lower").replace("+", " upper")


_INTENSITY_JA = {
    Intensity.I1: "震度１",
    Intensity.I2: "震度２",
    Intensity.I3: "震度３",
    Intensity.I4: "震度４",
    Intensity.I5_LOWER: "震度５弱",
    Intensity.I5_UPPER: "震度５強",
    Intensity.I6_LOWER: "震度６弱",
    Intensity.I6_UPPER: "震度６強",
    Intensity.I7: "震度７",
}


@dataclass(frozen=True, slots=True)
class WarningEntry:
    """One warning kind in one area: e.g. code "33" 大雨特別警報, status 発表."""

    code: str
    name: str
    status: str
    last_code: str | None = None  # <LastKind>: what this area had before (VPWW55 carries it)

    @property
    def state(self) -> EntryState:
        return entry_state(self.status)


@dataclass(frozen=True, slots=True)
class WarningArea:
    code: str
    name: str
    scope: AreaScope
    entries: tuple[WarningEntry, ...]


@dataclass(frozen=True, slots=True)
class SeismicArea:
    """Maximum intensity observed in one JMA area (a region or a city/ward)."""

    code: str
    name: str
    scope: AreaScope
    max_intensity: Intensity | None
    unreported: bool = False  # 震度５弱以上未入電: at least 5-, stations not yet reported


@dataclass(frozen=True, slots=True)
class Telegram:
    kind: TelegramKind
    data_type: str  # VPWW53, VXWW50, VXSE53, VXKO ... ("" when unsupported)
    control_title: str
    status: TelegramStatus
    info_type: InfoType
    head_title: str
    report_datetime: dt.datetime
    event_id: str
    serial: str
    publishing_office: str
    headline: str
    warning_areas: tuple[WarningArea, ...] = ()
    seismic_areas: tuple[SeismicArea, ...] = ()
    max_intensity: Intensity | None = None

    @property
    def is_real(self) -> bool:
        """False for drills (訓練) and tests (試験): they never trigger a real switch."""
        return self.status is TelegramStatus.NORMAL

    @property
    def event_key(self) -> str:
        """Identifies the sequence this telegram belongs to, so a 取消 finds what it cancels.

        Warnings carry no EventID; their sequence is the prefecture's warning telegram,
        named by the head title (神奈川県気象警報・注意報).
        """
        return f"{self.kind.value}:{self.event_id or self.head_title}"
