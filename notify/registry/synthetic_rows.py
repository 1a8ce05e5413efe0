"""Row generation for the synthetic city (the public API is notify/synthetic.py).

One `_Generator` turns (seed, first resident id of a chunk) into the rows of that chunk;
ids of children and endpoints come from ranges reserved per chunk, so chunks are independent
and several processes can make and load them at once.
"""

from __future__ import annotations

import binascii
import bisect
import datetime as dt
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from notify.city import CityConfig

RESIDENT_COLUMNS = (
    "id",
    "public_id",
    "ward_code",
    "language",
    "quiet_start_min",
    "quiet_end_min",
    "preferred_channel",
    "status",
    "created_at",
    "updated_at",
)
CHILD_COLUMNS = ("id", "resident_id", "birth_year", "birth_month", "birth_month_index")
TOPIC_COLUMNS = ("resident_id", "topic")
ENDPOINT_COLUMNS = (
    "id",
    "resident_id",
    "channel",
    "address",
    "platform",
    "consent",
    "status",
    "token",
    "consent_at",
    "withdrawn_at",
    "created_at",
    "updated_at",
)
TABLES = (  # (table, columns, count key)
    ("residents", RESIDENT_COLUMNS, "residents"),
    ("children", CHILD_COLUMNS, "children"),
    ("resident_topics", TOPIC_COLUMNS, "topics"),
    ("endpoints", ENDPOINT_COLUMNS, "endpoints"),
)
DEFAULT_CHUNK = 25_000
MAX_CHILDREN = 3
MAX_ENDPOINTS = 2
_NAMES = ("taro", "hanako", "yuki", "haruto", "sakura", "ren", "aoi", "sota", "mei", "kenji")
_DOMAINS = ("example.jp", "example.co.jp", "example.ne.jp", "example.com")


@dataclass(frozen=True, slots=True)
class Mix:
    """The shares the generator draws from (defaults: a Japanese designated city)."""

    households_with_children: float = 0.35
    children_counts: tuple[float, float, float] = (0.45, 0.40, 0.15)  # 1, 2, 3 children
    primary_channel: tuple[float, float, float] = (0.70, 0.20, 0.10)  # line, fcm, email
    second_channel: float = 0.08
    quiet_hours: float = 0.30
    japanese: float = 0.93
    ios_share: float = 0.35
    line_blocked: float = 0.05
    fcm_pruned: float = 0.03
    email_pending: float = 0.04
    email_withdrawn: float = 0.04
    years_of_signups: int = 3
    topics: dict[str, float] = field(
        default_factory=lambda: {
            "disaster": 0.85,
            "health": 0.40,
            "events": 0.35,
            "garbage": 0.45,
            "tax": 0.20,
        }
    )
    childcare_with_children: float = 0.80
    childcare_without: float = 0.05
    other_topic: float = 0.30


@dataclass(slots=True)
class SyntheticChunk:
    residents: list[tuple[Any, ...]]
    children: list[tuple[Any, ...]]
    topics: list[tuple[Any, ...]]
    endpoints: list[tuple[Any, ...]]

    def rows(self) -> tuple[list[tuple[Any, ...]], ...]:
        return (self.residents, self.children, self.topics, self.endpoints)


@dataclass(frozen=True, slots=True)
class FirstIds:
    resident: int = 1
    child: int = 1
    endpoint: int = 1


DEFAULT_MIX = Mix()
FROM_ONE = FirstIds()


class RowGenerator:
    def __init__(
        self, city: CityConfig, seed: int, first: FirstIds, today: dt.date, mix: Mix
    ) -> None:
        self.seed, self.first, self.mix = seed, first, mix
        self.wards = [w.code for w in city.wards]
        self.ward_cum = list(itertools.accumulate(w.population for w in city.wards))
        langs = [lang.code for lang in city.languages]
        main = "ja" if "ja" in langs else langs[0]
        others = [code for code in langs if code != main]
        weights = [1.0 / (i + 1) for i in range(len(others))]
        scale = (1 - mix.japanese) / sum(weights) if others else 0.0
        self.languages = [main, *others]
        self.language_cum = list(
            itertools.accumulate([mix.japanese if others else 1.0] + [w * scale for w in weights])
        )
        self.topics = [
            (t.key, mix.topics.get(t.key, mix.other_topic))
            for t in city.topics
            if t.key != "childcare"
        ]
        self.has_childcare = "childcare" in city.topic_keys
        quiet = city.default_quiet_hours
        default = (
            (quiet.start.hour * 60 + quiet.start.minute, quiet.end.hour * 60 + quiet.end.minute)
            if quiet
            else (22 * 60, 7 * 60)
        )
        self.quiet_choices = [default, default, default, (21 * 60, 7 * 60), (23 * 60, 6 * 60)]
        self.child_id = self.endpoint_id = 0
        self.kids_cum = list(itertools.accumulate(mix.children_counts))
        self.month_now = today.year * 12 + today.month - 1
        self.now = dt.datetime.combine(today, dt.time(9), tzinfo=dt.UTC)
        self.span_s = mix.years_of_signups * 365 * 86400

    def chunk(self, start: int, count: int) -> SyntheticChunk:
        mix = self.mix
        first_rid = self.first.resident + start
        # Id ranges reserved per chunk (at most 3 children and 2 endpoints a resident) make
        # chunks independent, so several processes can generate and load them at once.
        self.child_id = self.first.child + start * MAX_CHILDREN
        self.endpoint_id = self.first.endpoint + start * MAX_ENDPOINTS
        # Seeded by (seed, first resident id): reproducible, and a second load into the same
        # database (other ids) draws other addresses instead of colliding with the first.
        rng = random.Random(f"{self.seed}:{first_rid}")
        wards = rng.choices(self.wards, cum_weights=self.ward_cum, k=count)
        languages = rng.choices(self.languages, cum_weights=self.language_cum, k=count)
        primaries = rng.choices(("line", "fcm", "email"), weights=mix.primary_channel, k=count)
        residents: list[tuple[Any, ...]] = []
        children: list[tuple[Any, ...]] = []
        topics: list[tuple[Any, ...]] = []
        endpoints: list[tuple[Any, ...]] = []
        rand = rng.random
        for i in range(count):
            rid = first_rid + i
            # Growth: more sign-ups lately (u**1.7 puts the mass near "now").
            created = self.now - dt.timedelta(seconds=int(self.span_s * rand() ** 1.7))
            quiet = rng.choice(self.quiet_choices) if rand() < mix.quiet_hours else (None, None)
            primary = primaries[i]
            residents.append(
                (
                    rid,
                    _uuid4(rng.getrandbits(128)),
                    wards[i],
                    languages[i],
                    quiet[0],
                    quiet[1],
                    primary,
                    "active",
                    created,
                    created,
                )
            )
            with_children = rand() < mix.households_with_children
            if with_children:
                kids = bisect.bisect(self.kids_cum, rand() * self.kids_cum[-1]) + 1
                for _ in range(kids):
                    index = self.month_now - int(rand() * 228)  # 0-18 years, in months
                    children.append((self.child_id, rid, index // 12, index % 12 + 1, index))
                    self.child_id += 1
            for key, share in self.topics:
                if rand() < share:
                    topics.append((rid, key))
            if self.has_childcare and rand() < (
                mix.childcare_with_children if with_children else mix.childcare_without
            ):
                topics.append((rid, "childcare"))
            endpoints.append(self._endpoint(rng, rid, primary, created))
            if rand() < mix.second_channel:
                second = "email" if primary != "email" else "line"
                later = created + dt.timedelta(days=int(rand() * 200))
                endpoints.append(self._endpoint(rng, rid, second, min(later, self.now)))
        return SyntheticChunk(residents, children, topics, endpoints)

    def _endpoint(
        self, rng: random.Random, rid: int, channel: str, created: dt.datetime
    ) -> tuple[Any, ...]:
        mix, rand = self.mix, rng.random
        platform = None
        consent, status, withdrawn = "granted", "active", None
        if channel == "line":
            address = f"U{rng.getrandbits(128):032x}"
            if rand() < mix.line_blocked:
                consent, status, withdrawn = "withdrawn", "blocked", created
        elif channel == "fcm":
            address = _fcm_token(rng)
            platform = "ios" if rand() < mix.ios_share else "android"
            if rand() < mix.fcm_pruned:
                status = "pruned"
        else:
            address = f"{rng.choice(_NAMES)}.{rid}@{rng.choice(_DOMAINS)}"
            draw = rand()
            if draw < mix.email_pending:
                consent = "pending"
            elif draw < mix.email_pending + mix.email_withdrawn:
                consent, withdrawn = "withdrawn", created
        token = _b64url(rng.randbytes(12))
        self.endpoint_id += 1
        consent_at = created if consent != "pending" else None
        return (
            self.endpoint_id - 1,
            rid,
            channel,
            address,
            platform,
            consent,
            status,
            token,
            consent_at,
            withdrawn,
            created,
            created,
        )


def _fcm_token(rng: random.Random) -> str:
    """Shaped like a real registration token: instance id, ':APA91b', base64url payload."""
    raw = _b64url(rng.randbytes(117))  # 156 characters
    return f"{raw[:22]}:APA91b{raw[22:156]}"


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).decode()


def _uuid4(bits: int) -> str:
    """str(uuid.UUID(int=bits, version=4)) without the object (this runs a million times)."""
    h = f"{bits:032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


# --- loading -----------------------------------------------------------------------------
