"""A receiver-side reading of List-Unsubscribe (RFC 2369) + List-Unsubscribe-Post (RFC 8058).

It is what a mailbox provider does with our headers; it must agree with every case of the
list-unsubscribe conformance corpus before it is used to judge the bytes we send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_URI = re.compile(r"<\s*([^>]*?)\s*>")


@dataclass(frozen=True)
class Unsubscribe:
    kind: str  # OneClick | HttpLink | Mailto | None
    url: str | None = None
    address: str | None = None
    subject: str | None = None


def _http(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()


def classify(list_unsubscribe: str, list_unsubscribe_post: str | None) -> Unsubscribe:
    uris = _URI.findall(list_unsubscribe or "")
    https = [u for u in (_http(x) for x in uris) if u and u.startswith("https://")]
    if list_unsubscribe_post and https:
        if list_unsubscribe_post.strip().lower() == "list-unsubscribe=one-click":
            return Unsubscribe("OneClick", url=https[0])
    for uri in uris:
        if uri.lower().startswith("mailto:"):
            address, _, query = uri[len("mailto:") :].partition("?")
            subject = parse_qs(query).get("subject", [None])[0]
            return Unsubscribe("Mailto", address=address, subject=subject)
    for uri in uris:
        if (url := _http(uri)) is not None:
            return Unsubscribe("HttpLink", url=url)
    return Unsubscribe("None")
