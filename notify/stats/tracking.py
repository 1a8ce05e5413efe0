"""Tracking links for email and the signed open reference for app pushes.

The delivery engine puts `email_links(...)` into `Recipient.extra` of each email recipient
(the email adapter uses them) and `broadcast_open_ref(...)` into each push's data:

- `open_pixel_url`: `<img>` at the end of the HTML (`GET /o/{token}.gif`).
- `click_url_prefix`: every link is rewritten to `prefix + quote(url, safe="")`
  (`rewrite_links` does exactly that; `GET /c/{token}?u=…` redirects). The token signs the
  broadcast and endpoint; the target must be a link of that broadcast's own content, so a
  valid token cannot be turned into an open redirect.
- `unsubscribe_url`: `/u/{Endpoint.token}` (served by the registry), for List-Unsubscribe.
- `open_ref` (app): sent in the push data; the app returns it to `POST /api/app/opens`.
  The engine sends one per broadcast (`broadcast_open_ref`), so an FCM body is serialised
  once per batch; the endpoint also takes a per-device one (`app_open_ref`). The report is
  authenticated by the device credential either way, and a broadcast-wide reference counts
  only for a device the broadcast was sent to.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from notify.settings import Settings
from notify.stats.signing import TrackedPair, sign_token, verify_token

PIXEL_PATH = "/o/{token}.gif"
CLICK_PATH = "/c/{token}"
UNSUBSCRIBE_PATH = "/u/{token}"
# URLs as they appear in text or HTML attributes: ASCII only, no quotes or angle brackets,
# so Japanese text right after a URL is not swallowed.
URL_PATTERN = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+")
_TRAILING = ".,;:!?)]"
MAX_URL_CHARS = 2000

# 1x1 transparent GIF.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def _base(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def email_links(
    settings: Settings, broadcast_id: int, endpoint_id: int, endpoint_token: str | None = None
) -> dict[str, str]:
    """`Recipient.extra` for one email recipient of one broadcast.

    `endpoint_token` is `Endpoint.token`; without it there is no unsubscribe URL (and a bulk
    send must not go out without one, so the delivery engine always passes it).
    """
    secret = settings.resolved_secret()
    base = _base(settings)
    links = {
        "open_pixel_url": base
        + PIXEL_PATH.format(token=sign_token(secret, "open", broadcast_id, endpoint_id)),
        "click_url_prefix": base
        + CLICK_PATH.format(token=sign_token(secret, "click", broadcast_id, endpoint_id))
        + "?u=",
    }
    if endpoint_token:
        links["unsubscribe_url"] = base + UNSUBSCRIBE_PATH.format(token=endpoint_token)
    return links


def app_open_ref(settings: Settings, broadcast_id: int, endpoint_id: int) -> str:
    return sign_token(settings.resolved_secret(), "app", broadcast_id, endpoint_id)


ANY_DEVICE = 0  # endpoint ids start at 1


def broadcast_open_ref(settings: Settings, broadcast_id: int) -> str:
    """One reference for every device of a broadcast (goes into the shared push data)."""
    return sign_token(settings.resolved_secret(), "app", broadcast_id, ANY_DEVICE)


def verify_app_ref(settings: Settings, ref: str) -> TrackedPair | None:
    return verify_token(settings.resolved_secret(), "app", ref)


def verify_pixel(settings: Settings, token: str) -> TrackedPair | None:
    return verify_token(settings.resolved_secret(), "open", token)


def verify_click(settings: Settings, token: str) -> TrackedPair | None:
    return verify_token(settings.resolved_secret(), "click", token)


def _split(raw: str) -> tuple[str, str]:
    """(the URL, trailing punctuation that belongs to the sentence, not the URL)."""
    stripped = raw.rstrip(_TRAILING)
    return html.unescape(stripped), raw[len(stripped) :]


def links_in(texts: Iterable[str]) -> set[str]:
    """Every http(s) URL in the texts, as `rewrite_links` would see it (and, for adapters that
    take a whole href value, with any trailing punctuation too)."""
    found: set[str] = set()
    for text in texts:
        for match in URL_PATTERN.finditer(text):
            url, _ = _split(match.group(0))
            found.update((url, html.unescape(match.group(0))))
    return found


def rewrite_links(body: str, click_url_prefix: str) -> str:
    """Route every URL of a text or HTML body through the click tracker."""

    def replace(match: re.Match[str]) -> str:
        url, tail = _split(match.group(0))
        return click_url_prefix + quote(url, safe="") + tail

    return URL_PATTERN.sub(replace, body)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def broadcast_links(content: Mapping[str, Any]) -> set[str]:
    """The URLs a broadcast's own content contains: the only click-through targets."""
    return links_in(_strings(content))


def click_target_allowed(content: Mapping[str, Any], url: str) -> bool:
    # The target goes into a Location header. A staff link written with character
    # references ("&#13;&#10;") unescapes to CR LF, which aiohttp refuses to send.
    if not url or len(url) > MAX_URL_CHARS or not url.isprintable() or " " in url:
        return False
    return url in broadcast_links(content)


def location_of(url: str) -> str:
    """An allowed target as a header value: non-ASCII characters (from a reference such as
    "&#x3042;") percent-encoded as UTF-8, everything else as written."""
    return quote(url, safe=string.punctuation)
