"""Parse a JMA disaster-prevention XML telegram (hostile input) into a frozen `Telegram`.

The bytes come from outside (a file upload or a feed entry's linked XML posted to the hub),
so: a size cap before parsing, defusedxml with DTDs, entities and external references
forbidden, and every shape problem reported as `InvalidInput` (never a crash further in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from typing import TypeVar
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from notify.errors import InvalidInput, PayloadTooLarge
from notify.jma.telegram import (
    AreaScope,
    InfoType,
    Intensity,
    SeismicArea,
    Telegram,
    TelegramKind,
    TelegramStatus,
    WarningArea,
    WarningEntry,
)

# The largest real telegrams (a big earthquake's VXSE53, a prefecture's VPWW54) stay well
# under 2 MB; anything far beyond is not a telegram.
MAX_TELEGRAM_BYTES = 5_000_000

_JMX = "{http://xml.kishou.go.jp/jmaxml1/}"
_HEAD = "{http://xml.kishou.go.jp/jmaxml1/informationBasis1/}"
_METEO = "{http://xml.kishou.go.jp/jmaxml1/body/meteorology1/}"
_SEIS = "{http://xml.kishou.go.jp/jmaxml1/body/seismology1/}"

# Control/Title → (kind, data type). Titles are fixed per data type in JMA's format spec.
_KINDS: dict[str, tuple[TelegramKind, str]] = {
    "気象特別警報・警報・注意報": (TelegramKind.WEATHER_WARNING, "VPWW53"),
    "気象警報・注意報（Ｈ２７）": (TelegramKind.WEATHER_WARNING, "VPWW54"),
    "土砂災害警戒情報": (TelegramKind.LANDSLIDE_ALERT, "VXWW50"),
    "震度速報": (TelegramKind.SEISMIC, "VXSE51"),
    "震源に関する情報": (TelegramKind.SEISMIC, "VXSE52"),
    "震源・震度に関する情報": (TelegramKind.SEISMIC, "VXSE53"),
    "指定河川洪水予報": (TelegramKind.RIVER_FLOOD, "VXKO"),
}
_VPWW55_PREFIX = "気象警報・注意報（Ｒ０６）"  # followed by the phenomenon, e.g. （大雨）

_WARNING_SCOPES = {
    "気象警報・注意報（府県予報区等）": AreaScope.PREFECTURE,
    "気象警報・注意報（一次細分区域等）": AreaScope.REGION,
    "気象警報・注意報（市町村等をまとめた地域等）": AreaScope.REGION,
    "気象警報・注意報（市町村等）": AreaScope.CITY,
    "土砂災害警戒情報": AreaScope.CITY,
}
_UNREPORTED_5_LOWER = "震度５弱以上未入電"


def parse_telegram(data: bytes, *, max_bytes: int = MAX_TELEGRAM_BYTES) -> Telegram:
    """Parse one telegram; raises `InvalidInput` (malformed / foreign) or `PayloadTooLarge`."""
    if not isinstance(data, bytes | bytearray):
        raise InvalidInput("a telegram must be given as bytes", fields={"telegram": "not bytes"})
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"telegram is {len(data)} bytes; the limit is {max_bytes}",
            fields={"telegram": "too large"},
        )
    root = _parse_xml(bytes(data))
    if root.tag != f"{_JMX}Report":
        raise InvalidInput(
            "not a JMA disaster-prevention XML telegram (root element is not jmx:Report)",
            fields={"telegram": "foreign XML"},
        )
    control = _require(root, _JMX, "Control")
    head = _require(root, _HEAD, "Head")
    control_title = _text(control, _JMX, "Title", required=True)
    kind, data_type = _classify(control_title)
    telegram = Telegram(
        kind=kind,
        data_type=data_type,
        control_title=control_title,
        status=_enum(TelegramStatus, _text(control, _JMX, "Status", required=True), "Status"),
        info_type=_enum(InfoType, _text(head, _HEAD, "InfoType", required=True), "InfoType"),
        head_title=_text(head, _HEAD, "Title"),
        report_datetime=_datetime(_text(head, _HEAD, "ReportDateTime", required=True)),
        event_id=_text(head, _HEAD, "EventID"),
        serial=_text(head, _HEAD, "Serial"),
        publishing_office=_text(control, _JMX, "PublishingOffice"),
        headline=_text(_child(head, _HEAD, "Headline"), _HEAD, "Text"),
    )
    if kind in (TelegramKind.WEATHER_WARNING, TelegramKind.LANDSLIDE_ALERT):
        body = _child(root, _METEO, "Body")
        return replace(telegram, warning_areas=tuple(_warning_areas(body)))
    if kind is TelegramKind.RIVER_FLOOD:
        body = _child(root, _METEO, "Body")
        return replace(telegram, warning_areas=tuple(_flood_areas(head, body)))
    if kind is TelegramKind.SEISMIC:
        observation = _child(
            _child(_child(root, _SEIS, "Body"), _SEIS, "Intensity"), _SEIS, "Observation"
        )
        return replace(
            telegram,
            seismic_areas=tuple(_seismic_areas(observation)),
            max_intensity=_intensity(_text(observation, _SEIS, "MaxInt")),
        )
    return telegram


def _parse_xml(data: bytes) -> Element:
    try:
        root: Element = fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise InvalidInput(
            f"telegram refused: {type(exc).__name__} (DTDs and entities are not allowed)",
            fields={"telegram": "forbidden XML construct"},
        ) from exc
    except (ParseError, ValueError) as exc:
        raise InvalidInput(
            f"telegram is not well-formed XML: {exc}", fields={"telegram": "malformed XML"}
        ) from exc
    return root


def _classify(control_title: str) -> tuple[TelegramKind, str]:
    if control_title.startswith(_VPWW55_PREFIX):
        return TelegramKind.WEATHER_WARNING, "VPWW55"
    return _KINDS.get(control_title, (TelegramKind.UNSUPPORTED, ""))


def _warning_areas(body: Element | None) -> Iterator[WarningArea]:
    if body is None:
        return
    for warning in body.findall(f"{_METEO}Warning"):
        scope = _WARNING_SCOPES.get(warning.get("type", ""))
        if scope is None:
            continue
        for item in warning.findall(f"{_METEO}Item"):
            area = _child(item, _METEO, "Area")
            if area is None:
                continue
            entries = tuple(
                WarningEntry(
                    code=_text(kind, _METEO, "Code"),
                    name=_text(kind, _METEO, "Name"),
                    status=_text(kind, _METEO, "Status"),
                    last_code=_text(_child(kind, _METEO, "LastKind"), _METEO, "Code") or None,
                )
                for kind in item.findall(f"{_METEO}Kind")
            )
            yield WarningArea(
                code=_code(area, _METEO),
                name=_text(area, _METEO, "Name"),
                scope=scope,
                entries=entries,
            )


def _flood_areas(head: Element, body: Element | None) -> Iterator[WarningArea]:
    """Flood forecasts name the river's kind in the head and the flooded cities in the body."""
    entries: list[WarningEntry] = []
    for info in head.iter(f"{_HEAD}Information"):
        if info.get("type") != "指定河川洪水予報（予報区域）":
            continue
        for kind in info.iter(f"{_HEAD}Kind"):
            name = _text(kind, _HEAD, "Name")
            status = "解除" if "解除" in name else "発表"
            entries.append(WarningEntry(code=_text(kind, _HEAD, "Code"), name=name, status=status))
    seen: set[str] = set()
    if body is None:
        return
    for area in body.iter(f"{_METEO}Area"):
        city_code = _text(area, _METEO, "CityCode")
        if city_code and city_code not in seen:
            seen.add(city_code)
            yield WarningArea(
                code=city_code,
                name=_text(area, _METEO, "City"),
                scope=AreaScope.CITY,
                entries=tuple(entries),
            )


def _seismic_areas(observation: Element | None) -> Iterator[SeismicArea]:
    if observation is None:
        return
    for pref in observation.findall(f"{_SEIS}Pref"):
        for area in pref.findall(f"{_SEIS}Area"):
            yield _seismic_area(area, AreaScope.REGION)
            # IntensityStation codes look like city codes (相模原市藤野町小渕 1415121): skip them
            for city in area.findall(f"{_SEIS}City"):
                yield _seismic_area(city, AreaScope.CITY)


def _seismic_area(element: Element, scope: AreaScope) -> SeismicArea:
    intensity = _intensity(_text(element, _SEIS, "MaxInt"))
    unreported = intensity is None and _text(element, _SEIS, "Condition") == _UNREPORTED_5_LOWER
    return SeismicArea(
        code=_code(element, _SEIS),
        name=_text(element, _SEIS, "Name"),
        scope=scope,
        max_intensity=Intensity.I5_LOWER if unreported else intensity,
        unreported=unreported,
    )


# --- small helpers -------------------------------------------------------------------------


def _child(parent: Element | None, ns: str, name: str, *, required: bool = False) -> Element | None:
    found = None if parent is None else parent.find(f"{ns}{name}")
    if found is None and required:
        raise InvalidInput(
            f"telegram lacks the <{name}> element", fields={"telegram": f"missing {name}"}
        )
    return found


def _require(parent: Element, ns: str, name: str) -> Element:
    found = _child(parent, ns, name, required=True)
    assert found is not None
    return found


def _text(parent: Element | None, ns: str, name: str, *, required: bool = False) -> str:
    element = _child(parent, ns, name, required=required)
    value = "" if element is None else (element.text or "").strip()
    if required and not value:
        raise InvalidInput(f"telegram has an empty <{name}>", fields={"telegram": f"empty {name}"})
    return value


def _code(area: Element, ns: str) -> str:
    code = _text(area, ns, "Code")
    if not code.isdigit():
        raise InvalidInput(
            f"area code {code!r} is not numeric", fields={"telegram": "bad area code"}
        )
    return code


_E = TypeVar("_E", TelegramStatus, InfoType)


def _enum(cls: type[_E], value: str, name: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise InvalidInput(
            f"unknown {name} {value!r}", fields={"telegram": f"bad {name}"}
        ) from None


def _datetime(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput(
            f"ReportDateTime {value!r} is not an ISO time with offset",
            fields={"telegram": "bad ReportDateTime"},
        )
    return parsed


def _intensity(value: str) -> Intensity | None:
    try:
        return Intensity(value) if value else None
    except ValueError:
        return None
