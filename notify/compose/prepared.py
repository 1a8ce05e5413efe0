"""Prepared messages (templates/messages/*.yaml): ready-made content staff fill in.

Emergency ones (避難指示, 避難所開設 …) let disaster staff send in seconds: pick one, fill the
parameters (`$area`, `$shelter`), and the result is ordinary broadcast content.

    message = prepared_message("evacuation_order")
    content = message.instantiate({"area": "川崎区 大師地区"})     # → Broadcast.content

Parameter values are plain text typed by staff: they are inserted verbatim, jinja2
delimiters are neutralised (so a value can never become template code).
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notify.city import Names
from notify.compose.content import Content, parse_content
from notify.errors import ConfigError, InvalidInput, NotFound
from notify.settings import REPO_ROOT

PREPARED_DIR = REPO_ROOT / "templates" / "messages"
PARAM_MAX_CHARS = 500
_JINJA_MARKS = ("{{", "{%", "{#", "}}", "%}", "#}")


class PreparedParam(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    label: Names
    required: bool = True
    default: str = ""


class PreparedMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    name: Names
    priority: Literal["normal", "emergency"] = "normal"
    topic: str | None = None
    channels: list[Literal["line", "fcm", "email"]] = ["line", "fcm", "email"]
    params: list[PreparedParam] = []
    content: dict[str, Any]

    def instantiate(self, values: dict[str, str] | None = None) -> Content:
        """Content with the parameters filled in; missing required ones → InvalidInput."""
        values = values or {}
        known = {p.name for p in self.params}
        problems = {f"params.{k}": "unknown parameter" for k in values if k not in known}
        filled: dict[str, str] = {}
        for param in self.params:
            value = values.get(param.name, "").strip() or param.default
            if not value and param.required:
                problems[f"params.{param.name}"] = f"required ({param.label.ja})"
            elif len(value) > PARAM_MAX_CHARS:
                problems[f"params.{param.name}"] = f"longer than {PARAM_MAX_CHARS} characters"
            filled[param.name] = _literal(value)
        if problems:
            raise InvalidInput("入力内容に誤りがあります / invalid parameters", fields=problems)
        return parse_content(_substitute(self.content, filled))


def _literal(value: str) -> str:
    """Text that jinja2 outputs unchanged."""
    if not any(mark in value for mark in _JINJA_MARKS):
        return value
    return "".join("{{ %r }}" % ch if ch in "{}%#" else ch for ch in value)  # noqa: UP031


def _substitute(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, str):
        return string.Template(value).safe_substitute(params)
    if isinstance(value, dict):
        return {k: _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


@cache
def _load_all(directory: Path) -> dict[str, PreparedMessage]:
    found: dict[str, PreparedMessage] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            message = PreparedMessage.model_validate(yaml.safe_load(path.read_text("utf-8")))
            # Prepared content must itself be valid with its defaults filled in.
            message.instantiate({p.name: p.default or "x" for p in message.params})
        except (OSError, yaml.YAMLError, ValidationError, InvalidInput) as exc:
            raise ConfigError(f"invalid prepared message {path.name}: {exc}") from exc
        found[message.key] = message
    return found


def prepared_messages(directory: Path = PREPARED_DIR) -> list[PreparedMessage]:
    return list(_load_all(directory).values())


def prepared_message(key: str, directory: Path = PREPARED_DIR) -> PreparedMessage:
    try:
        return _load_all(directory)[key]
    except KeyError:
        raise NotFound(
            f"定型文 {key!r} はありません / no prepared message {key!r}", fields={"key": "unknown"}
        ) from None
