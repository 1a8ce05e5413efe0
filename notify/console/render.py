"""Jinja2 (autoescape on, strict undefined) for the console's own, trusted page templates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from notify.console.i18n import (
    CHANNEL_LABELS,
    MODE_LABELS,
    ROLE_LABELS,
    STATUS_LABELS,
    SWITCH_LABELS,
    Lang,
    label,
    pick,
)
from notify.settings import REPO_ROOT
from notify.web.keys import CITY

TEMPLATE_DIR = REPO_ROOT / "templates" / "console"
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("console_jinja")

# Everything is served by the hub: no CDN, no inline script, no inline style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def build_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: "—" if n is None else f"{int(n):,}"
    env.filters["percent"] = lambda v: "—" if v is None else f"{float(v):.1f}%"
    return env


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    env = request.app[JINJA]
    lang: Lang = context["lang"]
    tz = request.app[CITY].tz

    def t(ja: str, en: str) -> str:
        return en if lang == "en" else ja

    def local(value: dt.datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return "—"
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(tz).strftime(fmt)

    helpers = {
        "t": t,
        "pick": lambda message: pick(str(message), lang),
        "local": local,
        "status_label": lambda s: label(STATUS_LABELS, s, lang),
        "role_label": lambda r: label(ROLE_LABELS, r, lang),
        "channel_label": lambda c: label(CHANNEL_LABELS, c, lang),
        "mode_label": lambda m: label(MODE_LABELS, m, lang),
        "switch_label": lambda s: label(SWITCH_LABELS, s or "", lang) if s else "—",
        "names": lambda item: getattr(item, lang, None) or getattr(item, "ja", str(item)),
        "svg": Markup,  # charts are built by notify.console.charts with escaped text only
    }
    body = env.get_template(template).render({**helpers, **context})
    response = web.Response(text=body, content_type="text/html", status=status)
    response.headers.update(SECURITY_HEADERS)
    return response
