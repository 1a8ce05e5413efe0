"""Fixtures: the menus in config/richmenus, a CJK font, and LINE's own RichMenuRequest schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from notify.mode.menus import MenuCatalog, load_menu_catalog
from notify.settings import REPO_ROOT

MENU_DIR = REPO_ROOT / "config" / "richmenus"
CITIES = ("kawasaki", "sagamihara")
# Debian: fonts-ipaexfont-gothic (what .ci installs) or fonts-noto-cjk
FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)


@pytest.fixture(scope="session")
def cjk_font() -> Path:
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    pytest.fail("no CJK font: apt-get install fonts-ipaexfont-gothic (see .ci/run)")


@pytest.fixture(scope="session", params=CITIES)
def catalog(request: pytest.FixtureRequest) -> MenuCatalog:
    return load_menu_catalog(MENU_DIR / request.param)


class LineSchema:
    """Validates against messaging-api.yml, resolving its discriminator by hand (jsonschema
    ignores OpenAPI discriminators) and refusing keys the schema does not declare."""

    URI = "urn:line:messaging-api"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = spec["components"]["schemas"]
        resource = Resource(contents=spec, specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(self.URI, resource)

    def validate(self, name: str, instance: Any) -> None:
        ref = {"$ref": f"{self.URI}#/components/schemas/{name}"}
        OAS30Validator(ref, registry=self.registry).validate(instance)
        unknown = set(instance) - self.properties(name)
        assert not unknown, f"{name}: keys the schema does not declare: {unknown}"

    def properties(self, name: str) -> set[str]:
        schema = self.schemas[name]
        found = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            if "$ref" in part:
                found |= self.properties(part["$ref"].rsplit("/", 1)[-1])
            found |= set(part.get("properties", {}))
        return found

    def action_schema(self, action_type: str) -> str:
        mapping = self.schemas["Action"]["discriminator"]["mapping"]
        return str(mapping[action_type]).rsplit("/", 1)[-1]


@pytest.fixture(scope="session")
def line_schema(reference_dir: Path) -> LineSchema:
    path = reference_dir / "line-openapi" / "messaging-api.yml"
    return LineSchema(yaml.safe_load(path.read_text(encoding="utf-8")))
