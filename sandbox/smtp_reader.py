"""Simulated mail readers: a share of delivered messages is "opened" (the 1×1 tracking image is
fetched, as a mail client showing images does) and a share of those is clicked through.

Off by default (`reader_open_share` 0); the demo turns it on so the analysts' email opens and
clicks are real requests to the hub, like LINE's simulated opens. Only loopback URLs are ever
fetched: the message came from a client of this sandbox, and the sandbox must not become a
way to make requests elsewhere. Redirects are not followed (a click lands on the hub's
click-through endpoint, which answers with a redirect to the real page).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator, Mapping
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from sandbox.common import Counters

log = logging.getLogger(__name__)

READER_LIMITS = {"reader_open_share": 0.0, "reader_click_share": 0.0, "reader_delay_s": 0.2}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
USER_AGENT = "Mozilla/5.0 (sandbox mail reader)"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.pixels: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img" and found.get("width") == "1" and found.get("height") == "1":
            self.pixels.append(found.get("src") or "")
        elif tag == "a" and found.get("href"):
            self.links.append(found["href"] or "")


def tracking_urls(raw: bytes) -> tuple[str | None, list[str]]:
    """(the open pixel's URL, the message's links) from the HTML part, loopback only."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return None, []
    parser = _Links()
    parser.feed(part.get_content())
    pixels = list(_loopback(parser.pixels))
    return (pixels[-1] if pixels else None), list(_loopback(parser.links))


def _loopback(urls: list[str]) -> Iterator[str]:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname in LOOPBACK:
            yield url


class MailReaders:
    """Decides, per delivered recipient, whether it is read; reads it a moment later."""

    def __init__(
        self, limits: Mapping[str, Any], counters: Counters, seed: int | None = None
    ) -> None:
        self._limits = limits
        self._counters = counters
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()

    def delivered(self, raw: bytes, recipients: list[str]) -> None:
        share = float(self._limits["reader_open_share"])
        for recipient in recipients:
            if share > 0 and self._rng.random() < share:
                click = self._rng.random() < float(self._limits["reader_click_share"])
                task = asyncio.get_running_loop().create_task(self._read(raw, recipient, click))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _read(self, raw: bytes, recipient: str, click: bool) -> None:
        await asyncio.sleep(float(self._limits["reader_delay_s"]))
        try:
            pixel, links = tracking_urls(raw)
            # The unsubscribe link is a link too; a reader clicks the content, not that.
            content_links = [u for u in links if not urlsplit(u).path.startswith("/u/")]
            async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
                if pixel:
                    await self._get(session, pixel, "opened", recipient)
                if click and content_links:
                    await self._get(session, content_links[0], "clicked", recipient)
        except Exception as exc:  # a reader that fails is a reader that did not read
            log.debug("simulated reader of %s: %r", recipient, exc)

    async def _get(
        self, session: aiohttp.ClientSession, url: str, counter: str, recipient: str
    ) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with session.get(url, allow_redirects=False, timeout=timeout) as response:
            await response.read()
        self._counters.add(counter, recipient)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
