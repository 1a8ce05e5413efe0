"""Read JMA's Atom feeds (PuSH or polled): which telegrams exist and where their XML is.

The hub fetches or is sent each entry's linked XML and gives those bytes to
`parse_telegram`; this module only lists entries, and it is as hostile-input-safe as the
telegram parser. The data type (VPWW53, VXSE53 ...) sits in the data file's name.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from notify.errors import InvalidInput, PayloadTooLarge

MAX_FEED_BYTES = 2_000_000
_ATOM = "{http://www.w3.org/2005/Atom}"
_DATA_TYPE = re.compile(r"_(V[A-Z]{3}\d{2}|VXKO\d{2})_")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    entry_id: str
    title: str
    updated: dt.datetime
    author: str
    link: str  # the telegram's XML
    content: str

    @property
    def data_type(self) -> str:
        """VPWW53, VXSE53 ... when the link's file name says (current JMA URLs do), else ""."""
        match = _DATA_TYPE.search(self.link.rsplit("/", 1)[-1])
        return match.group(1) if match else ""


def parse_atom_feed(data: bytes, *, max_bytes: int = MAX_FEED_BYTES) -> tuple[FeedEntry, ...]:
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"feed is {len(data)} bytes; the limit is {max_bytes}", fields={"feed": "too large"}
        )
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidInput(
            f"feed refused: {type(exc).__name__}", fields={"feed": "forbidden XML construct"}
        ) from exc
    except (ParseError, ValueError) as exc:
        raise InvalidInput(
            f"feed is not well-formed XML: {exc}", fields={"feed": "malformed"}
        ) from exc
    if root.tag != f"{_ATOM}feed":
        raise InvalidInput("not an Atom feed", fields={"feed": "foreign XML"})
    entries = []
    for entry in root.findall(f"{_ATOM}entry"):
        link = next(
            (
                el.get("href", "")
                for el in entry.findall(f"{_ATOM}link")
                if el.get("rel", "alternate") == "alternate"
            ),
            "",
        )
        if not link.startswith(("https://", "http://")):
            raise InvalidInput("feed entry without an http(s) link", fields={"feed": "bad link"})
        updated_text = (entry.findtext(f"{_ATOM}updated") or "").strip()
        try:
            updated = dt.datetime.fromisoformat(updated_text.replace("Z", "+00:00"))
        except ValueError:
            updated = None
        if updated is None or updated.tzinfo is None:
            raise InvalidInput(
                f"feed entry has a bad <updated> {updated_text!r}", fields={"feed": "bad updated"}
            )
        entries.append(
            FeedEntry(
                entry_id=(entry.findtext(f"{_ATOM}id") or "").strip(),
                title=(entry.findtext(f"{_ATOM}title") or "").strip(),
                updated=updated,
                author=(entry.findtext(f"{_ATOM}author/{_ATOM}name") or "").strip(),
                link=link,
                content=(entry.findtext(f"{_ATOM}content") or "").strip(),
            )
        )
    return tuple(entries)
