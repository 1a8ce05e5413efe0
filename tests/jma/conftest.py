"""Fixtures for the JMA tests: the reference telegrams, the city mappings, and a way to derive
a variant of a real telegram (e.g. put 大雨特別警報 on 川崎市) without writing XML by hand."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from notify.jma.config import CityAreas, JmaConfig, Rule, load_jma_config
from notify.settings import REPO_ROOT

JMX = "{http://xml.kishou.go.jp/jmaxml1/}"
HEAD = "{http://xml.kishou.go.jp/jmaxml1/informationBasis1/}"
METEO = "{http://xml.kishou.go.jp/jmaxml1/body/meteorology1/}"
SEIS = "{http://xml.kishou.go.jp/jmaxml1/body/seismology1/}"

KAWASAKI = "141305"
SAGAMIHARA = "141500"
KAWASAKI_WARDS = ("141313", "141321", "141330", "141348", "141356", "141364", "141372")
SAGAMIHARA_WARDS = ("141518", "141526", "141534")


@pytest.fixture(scope="session")
def jma_dir(reference_dir: Path) -> Path:
    return reference_dir / "jma"


@pytest.fixture(scope="session")
def jma_config() -> JmaConfig:
    return load_jma_config(REPO_ROOT / "config" / "jma.yaml")


@pytest.fixture(scope="session")
def kawasaki(jma_config: JmaConfig) -> CityAreas:
    return jma_config.city(KAWASAKI)


@pytest.fixture(scope="session")
def sagamihara(jma_config: JmaConfig) -> CityAreas:
    return jma_config.city(SAGAMIHARA)


@pytest.fixture(scope="session")
def rules(jma_config: JmaConfig) -> tuple[Rule, ...]:
    return jma_config.rules


def derive(path: Path, *changes: Callable[[ET.Element], None]) -> bytes:
    """A real telegram with some changes applied (the reference file itself is trusted)."""
    root = ET.fromstring(path.read_bytes())
    for change in changes:
        change(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def set_control(name: str, value: str) -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        element = root.find(f"{JMX}Control/{JMX}{name}")
        assert element is not None
        element.text = value

    return change


def set_head(name: str, value: str) -> Callable[[ET.Element], None]:
    def change(root: ET.Element) -> None:
        element = root.find(f"{HEAD}Head/{HEAD}{name}")
        assert element is not None
        element.text = value

    return change


Kind = tuple[str, str, str] | tuple[str, str, str, str]  # code, name, status[, last code]


def set_warning_kinds(
    area_code: str,
    kinds: Iterable[Kind],
    *,
    warning_type: str = "気象警報・注意報（市町村等）",
    new_code: str | None = None,
    new_name: str | None = None,
) -> Callable[[ET.Element], None]:
    """Replace the <Kind>s of one area's item in a meteorology body (and maybe its code)."""

    def change(root: ET.Element) -> None:
        body = root.find(f"{METEO}Body")
        assert body is not None
        for warning in body.findall(f"{METEO}Warning"):
            if warning.get("type") != warning_type:
                continue
            for item in warning.findall(f"{METEO}Item"):
                code = item.find(f"{METEO}Area/{METEO}Code")
                if code is None or code.text != area_code:
                    continue
                for old in item.findall(f"{METEO}Kind"):
                    item.remove(old)
                for index, kind in enumerate(kinds):
                    element = ET.Element(f"{METEO}Kind")
                    for tag, text in zip(("Code", "Name", "Status"), kind[:3], strict=True):
                        ET.SubElement(element, f"{METEO}{tag}").text = text
                    if len(kind) == 4:
                        last = ET.SubElement(element, f"{METEO}LastKind")
                        ET.SubElement(last, f"{METEO}Code").text = kind[3]
                    item.insert(index, element)
                if new_code is not None:
                    code.text = new_code
                name = item.find(f"{METEO}Area/{METEO}Name")
                if new_name is not None and name is not None:
                    name.text = new_name
                return
        raise AssertionError(f"area {area_code} not found in {warning_type}")

    return change


def set_intensity(
    area_code: str, max_int: str | None, condition: str | None = None
) -> Callable[[ET.Element], None]:
    """Set <MaxInt> of one region/city of a seismic body (None removes it)."""

    def change(root: ET.Element) -> None:
        for element in root.iter():
            code = element.find(f"{SEIS}Code")
            if element.tag not in (f"{SEIS}Area", f"{SEIS}City") or code is None:
                continue
            if code.text != area_code:
                continue
            max_element = element.find(f"{SEIS}MaxInt")
            if max_element is not None:
                element.remove(max_element)
            if max_int is not None:
                new = ET.Element(f"{SEIS}MaxInt")
                new.text = max_int
                element.insert(2, new)
            if condition is not None:
                ET.SubElement(element, f"{SEIS}Condition").text = condition
            return
        raise AssertionError(f"seismic area {area_code} not found")

    return change
