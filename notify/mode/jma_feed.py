"""A posted body is either one telegram or an Atom feed whose entries link to telegrams.

Feed links are fetched only under `settings.jma_fetch_prefix` (JMA's data host in
production), each at most `MAX_TELEGRAM_BYTES`; every link is checked before any is fetched,
so a feed with one foreign link is refused whole and changes nothing.
"""

from __future__ import annotations

import re

import aiohttp

from notify.errors import InvalidInput, PayloadTooLarge, TransientChannelError
from notify.jma import MAX_TELEGRAM_BYTES, parse_atom_feed
from notify.mode.jma_intake import IntakeResult, ingest_telegram
from notify.mode.runtime import ModeRuntime

_FEED_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?feed[\s>/]")
FETCH_TIMEOUT_S = 10.0


def looks_like_feed(data: bytes) -> bool:
    head = data[:4096]
    return bool(_FEED_ROOT.search(head)) and b"http://www.w3.org/2005/Atom" in head


async def ingest(rt: ModeRuntime, data: bytes, *, source: str) -> list[IntakeResult]:
    if not looks_like_feed(data):
        return [await ingest_telegram(rt, data, source=source)]
    entries = parse_atom_feed(data)
    prefix = rt.settings.jma_fetch_prefix
    foreign = [e.link for e in entries if not prefix or not e.link.startswith(prefix)]
    if foreign:
        raise InvalidInput(
            "取得先が許可されていないリンクがあります / the feed links outside the allowed "
            f"telegram host: {foreign[0][:200]}",
            fields={"feed": "link outside settings.jma_fetch_prefix"},
        )
    results = []
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        for entry in entries:
            raw = await _fetch(session, entry.link)
            results.append(await ingest_telegram(rt, raw, source="feed"))
    return results


async def _fetch(session: aiohttp.ClientSession, url: str) -> bytes:
    try:
        async with session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise TransientChannelError(
                    f"JMA telegram {url} answered {response.status}", provider_code="jma_fetch"
                )
            body = await response.content.read(MAX_TELEGRAM_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientChannelError(
            f"JMA telegram {url} could not be fetched: {exc!r}", provider_code="jma_fetch"
        ) from exc
    if len(body) > MAX_TELEGRAM_BYTES:
        raise PayloadTooLarge(
            f"telegram at {url} is larger than {MAX_TELEGRAM_BYTES} bytes",
            fields={"telegram": "too large"},
        )
    return body
