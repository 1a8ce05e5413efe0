"""Small registries built row by row, for segment and reach tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from notify.city import CityConfig, load_city
from notify.models import Child, Consent, Endpoint, EndpointStatus, Resident, ResidentTopic
from notify.settings import REPO_ROOT

_addresses = itertools.count(1)


@pytest.fixture(scope="session")
def city() -> CityConfig:
    return load_city(Path(REPO_ROOT / "config" / "kawasaki.yaml"))


def add_resident(
    session: AsyncSession,
    *,
    ward: str | None = "141313",
    language: str = "ja",
    children: Sequence[tuple[int, int]] = (),
    topics: Sequence[str] = (),
    endpoints: Sequence[str | tuple[str, str, str]] = (),
    status: str = "active",
    preferred: str | None = None,
) -> Resident:
    """`endpoints`: channel names (active + granted) or (channel, consent, status) tuples."""
    resident = Resident(
        public_id=str(uuid.uuid4()),
        ward_code=ward,
        language=language,
        status=status,
        preferred_channel=preferred,
    )
    for year, month in children:
        resident.children.append(
            Child(birth_year=year, birth_month=month, birth_month_index=year * 12 + month - 1)
        )
    for topic in topics:
        resident.topics.append(ResidentTopic(topic=topic))
    for spec in endpoints:
        channel, consent, state = (
            (spec, Consent.GRANTED, EndpointStatus.ACTIVE) if isinstance(spec, str) else spec
        )
        resident.endpoints.append(
            Endpoint(
                channel=channel,
                address=f"{channel}-{next(_addresses)}",
                consent=consent,
                status=state,
            )
        )
    session.add(resident)
    return resident
