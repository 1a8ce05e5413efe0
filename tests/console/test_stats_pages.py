"""The analyst pages show the statistics core's numbers: table, charts, CSV link, detail."""

from __future__ import annotations

import re
import secrets
import uuid

from notify.db import Database, utcnow
from notify.delivery.tables import Delivery
from notify.models import Broadcast, Consent, Endpoint, Resident
from notify.stats.events import record_open
from notify.stats.tables import OpenKind
from tests.console.conftest import Console

NAKAHARA = "141330"


async def seed_sent_broadcast(db: Database, title: str = "健診のお知らせ") -> int:
    """8 app devices (1 opened) and 3 email addresses (1 opened) in 中原区."""
    async with db.transaction() as session:
        broadcast = Broadcast(
            title=title,
            status="completed",
            content={"ja": {"title": title, "body": "本文"}},
            segment={},
            channels=["fcm", "email"],
            started_at=utcnow(),
        )
        session.add(broadcast)
        await session.flush()
        for channel, count, opened in (("fcm", 8, 1), ("email", 3, 1)):
            for i in range(count):
                resident = Resident(public_id=str(uuid.uuid4()), ward_code=NAKAHARA)
                session.add(resident)
                await session.flush()
                endpoint = Endpoint(
                    resident_id=resident.id,
                    channel=channel,
                    address=f"{channel}-{secrets.token_hex(6)}",
                    consent=Consent.GRANTED,
                    consent_at=utcnow(),
                )
                session.add(endpoint)
                await session.flush()
                session.add(
                    Delivery(
                        broadcast_id=broadcast.id,
                        resident_id=resident.id,
                        endpoint_id=endpoint.id,
                        channel=channel,
                        ward_code=NAKAHARA,
                        language="ja",
                        status="sent",
                        provider_id="p",
                        sent_at=utcnow(),
                    )
                )
                if i < opened:
                    await session.flush()
                    await record_open(session, broadcast.id, endpoint.id, channel, OpenKind.OPEN)
        return broadcast.id


async def test_report_table_has_the_citys_columns_and_exact_rates(console: Console) -> None:
    bid = await seed_sent_broadcast(console.db)
    await console.sign_in("analyst")
    html = await console.get_html("/console/stats")
    for column in ("配信日時", "内容", "配信数", "開封数", "開封率"):
        assert f">{column}<" in html
    rows = re.findall(
        r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td class=\"num\">(.*?)</td>"
        r"\s*<td class=\"num\">(.*?)</td>\s*<td class=\"num\">(.*?)</td>",
        html,
        re.S,
    )
    cells = {re.sub(r"<[^>]+>", "", r[1]): r[2:] for r in rows}
    assert cells["健診のお知らせ（アプリ通知）"] == ("8", "1", "12.5%")
    assert cells["健診のお知らせ（メール）"] == ("3", "1", "33.3%")
    assert f'href="/console/stats/{bid}"' in html
    assert 'href="/api/stats/report.csv?from=' in html
    assert html.count('role="img"') == 4  # broadcast, channel, ward, growth
    assert "中原区" in html


async def test_csv_link_downloads_with_the_session(console: Console) -> None:
    await seed_sent_broadcast(console.db)
    await console.sign_in("analyst")
    html = await console.get_html("/console/stats")
    link = re.search(r'href="(/api/stats/report\.csv\?[^"]+)"', html)
    assert link
    resp = await console.client.get(link.group(1).replace("&amp;", "&"))
    assert resp.status == 200
    body = (await resp.read()).decode("utf-8")
    assert body.startswith("\ufeff配信日時,内容,配信数,開封数,開封率")
    assert "健診のお知らせ（アプリ）,8,1,12.5%" in body


async def test_detail_page_breaks_down_by_ward_and_channel(console: Console) -> None:
    bid = await seed_sent_broadcast(console.db)
    await console.sign_in("analyst")
    html = await console.get_html(f"/console/stats/{bid}")
    assert "区別" in html and "中原区" in html
    assert "18.2%" in html  # 2 opens / 11 delivered over both channels


async def test_bad_range_is_named(console: Console) -> None:
    await console.sign_in("analyst")
    html = await console.get_html("/console/stats?from=2025-02-01&to=2025-01-01", status=422)
    assert "期間が逆です" in html


async def test_disaster_staff_cannot_read_statistics_pages(console: Console) -> None:
    await console.sign_in("disaster")
    await console.get_html("/console/stats", status=403)
