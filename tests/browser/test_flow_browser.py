"""Each role does its job in Chromium: PR composes and submits, the approver approves, PR
schedules it now, a burst worker sends it through the provider sandboxes while the page
watches, and the analyst reads the statistics. Screenshots of every main page."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from notify.db import utcnow
from notify.models import Broadcast, Consent, Endpoint, Resident
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.browser.conftest import SCREENSHOTS, Hub, screenshot, sign_in
from tests.plugins.sandboxes import sandbox_settings
from tests.plugins.workers import run_burst_worker

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)]
NAKAHARA = "141330"


@pytest.fixture
def hub_settings(settings: Settings, sandboxes: SandboxHandles) -> Settings:
    return sandbox_settings(settings, sandboxes, rate_limits_enabled=False)


async def seed_town(hub: Hub) -> None:
    """6 residents of 中原区 on LINE, app and email; 4 of 川崎区 on the app only."""
    async with hub.db.transaction() as session:
        for n in range(10):
            ward, channels = (NAKAHARA, ("line", "fcm", "email")) if n < 6 else ("141313", ("fcm",))
            resident = Resident(public_id=str(uuid.uuid4()), ward_code=ward, language="ja")
            session.add(resident)
            await session.flush()
            addresses = {
                "line": f"U{n:032x}",
                "fcm": f"fcm-token-{n:04d}",
                "email": f"r{n}@example.jp",
            }
            for channel in channels:
                session.add(
                    Endpoint(
                        resident_id=resident.id,
                        channel=channel,
                        address=addresses[channel],
                        consent=Consent.GRANTED,
                        consent_at=utcnow(),
                        token=secrets.token_urlsafe(12),
                    )
                )


async def _broadcast(hub: Hub) -> Broadcast:
    async with hub.db.sessionmaker() as session:
        found = (await session.scalars(select(Broadcast))).one()
    return found


async def test_compose_approve_send_and_read_the_stats(
    new_page: Any, hub: Hub, hub_settings: Settings, sandboxes: SandboxHandles
) -> None:
    await seed_town(hub)

    # --- PR staff: compose with the segment builder, live reach, previews ------------------
    pr = await new_page()
    await sign_in(pr, "pr")
    await pr.get_by_role("navigation").get_by_role("link", name="新規作成").click()
    await pr.get_by_label("管理用タイトル").fill("中原区 子育て広場のお知らせ")
    await pr.get_by_label("見出し (ja)").fill("子育て広場のお知らせ")
    await pr.get_by_label("本文 (ja)").fill("{{ resident.ward }}の子育て広場は毎週水曜日です。")
    await pr.get_by_label("中原区").check()
    reach = pr.locator("#reach-reachable")
    await reach.filter(has_text="6").wait_for()  # updated by the page's script, no reload
    async with pr.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/console/broadcasts/new"),
        timeout=60_000,
    ) as posted:
        await pr.get_by_role("button", name="プレビューと人数を更新").click()
    response = await posted.value
    assert response.status == 200, (await response.text())[:3000]
    bubble = pr.locator(".line-bubble").first
    assert "中原区の子育て広場は毎週水曜日です。" in await bubble.inner_text()
    assert await pr.locator(".notification-title").first.inner_text() == "子育て広場のお知らせ"
    await screenshot(pr, "03-compose-with-previews")
    await pr.get_by_role("button", name="下書きを保存").click()
    await pr.get_by_text("保存しました。").wait_for()
    draft_url = pr.url

    # --- a test send to the author's own address, through the JSON API from the page -------
    await pr.get_by_role("link", name="テスト送信先を管理").click()
    await pr.get_by_label("チャネル").select_option("email")
    await pr.get_by_label("宛先（LINEユーザーID・端末トークン・メール）").fill(
        "pr-staff@example.jp"
    )
    await pr.get_by_role("button", name="追加する").click()
    await pr.get_by_role("cell", name="pr-staff@example.jp", exact=True).wait_for()
    await pr.goto(draft_url)
    await pr.get_by_role("button", name="テスト送信する").click()
    await pr.locator("#test-result [data-outcome=sent]").wait_for()
    mails = [m for m in sandboxes.smtp.mailbox.messages if "pr-staff@example.jp" in m.rcpt_tos]
    assert len(mails) == 1 and "【テスト】" in mails[0].summary()["subject"]
    await pr.get_by_role("button", name="承認を依頼する").click()
    await pr.get_by_text("承認依頼を出しました。").wait_for()
    mail = pr.frame_locator("iframe.mail-frame").get_by_role("heading", level=1)
    assert await mail.inner_text() == "子育て広場のお知らせ"  # the HTML email, sandboxed
    await screenshot(pr, "04-broadcast-submitted")
    # A full-page capture leaves sandboxed frames blank in headless Chromium: shoot it alone.
    await pr.locator("iframe.mail-frame").screenshot(path=SCREENSHOTS / "04b-email-preview.png")

    # --- approver: the queue with previews; approve with a comment --------------------------
    approver = await new_page()
    await sign_in(approver, "approver")
    await approver.get_by_role("navigation").get_by_role("link", name="承認待ち").click()
    card = approver.get_by_role("article", name="中原区 子育て広場のお知らせ")
    assert "中原区の子育て広場" in await card.locator(".line-bubble").inner_text()
    await screenshot(approver, "05-approval-queue")
    await card.get_by_label("コメント（任意）").fill("内容を確認しました")
    await card.get_by_role("button", name="承認する").click()
    await approver.get_by_text("承認しました。").wait_for()

    # --- PR staff: schedule now, then watch it send -----------------------------------------
    await pr.reload()
    await pr.get_by_label("今すぐ").check()
    await pr.get_by_role("button", name="予約する").click()
    await pr.get_by_text("配信を予約しました。").wait_for()
    assert (await _broadcast(hub)).status == "scheduled"
    await run_burst_worker(hub_settings)
    assert (await _broadcast(hub)).status == "completed"
    # The page notices by itself (it polls the delivery progress API) and shows the counts.
    await pr.locator("h1 .status").filter(has_text="配信完了").wait_for(timeout=30_000)
    line_bar = pr.locator("#progress-line")
    assert await line_bar.get_attribute("value") == "6"
    await screenshot(pr, "06-broadcast-completed")
    delivered = sandboxes.fcm.state.counters.total("delivered")
    assert delivered == 6, "only the 中原区 residents' devices got the push"

    # --- analyst: the city's table and the charts -------------------------------------------
    analyst = await new_page()
    await sign_in(analyst, "analyst")
    await analyst.get_by_role("navigation").get_by_role("link", name="配信統計").click()
    row = analyst.get_by_role("row", name="中原区 子育て広場のお知らせ（アプリ通知）")
    cells = await row.get_by_role("cell").all_inner_texts()
    assert cells[2:] == ["6", "0", "0.0%"]
    assert await analyst.locator("svg[role=img]").count() == 4
    await screenshot(analyst, "07-statistics")
    await analyst.get_by_role("link", name="English").click()
    await analyst.get_by_role("heading", name="Statistics", exact=True).wait_for()
    await screenshot(analyst, "07-statistics-en")
    await analyst.get_by_role("link", name="日本語").click()
    await analyst.get_by_role("link", name="中原区 子育て広場のお知らせ").first.click()
    await analyst.get_by_role("heading", name="区別").wait_for()
    await screenshot(analyst, "08-statistics-detail")
