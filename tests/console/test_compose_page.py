"""The compose page: segment builder, live reach, per-channel previews."""

from __future__ import annotations

from typing import Any

from notify.models import Child, Consent, Endpoint, Resident, ResidentTopic
from tests.console.conftest import Console

NAKAHARA, TAMA = "141330", "141356"


async def seed_residents(console: Console) -> None:
    """Four residents: two in 中原区 with a 4-year-old (LINE; one also email), one in 多摩区
    (app), one in 中原区 without children (LINE, withdrawn consent)."""
    import uuid

    async with console.db.transaction() as session:

        def resident(ward: str, language: str = "ja") -> Resident:
            r = Resident(public_id=str(uuid.uuid4()), ward_code=ward, language=language)
            session.add(r)
            return r

        people: list[tuple[Resident, list[tuple[str, str]], bool]] = [
            (resident(NAKAHARA), [("line", "U1")], True),
            (resident(NAKAHARA, "en"), [("line", "U2"), ("email", "a@example.jp")], True),
            (resident(TAMA), [("fcm", "tok-1")], True),
            (resident(NAKAHARA), [("line", "U3")], False),
        ]
        await session.flush()
        for person, endpoints, has_child in people:
            for channel, address in endpoints:
                consent = Consent.GRANTED if address != "U3" else Consent.WITHDRAWN
                session.add(
                    Endpoint(
                        resident_id=person.id, channel=channel, address=address, consent=consent
                    )
                )
            session.add(ResidentTopic(resident_id=person.id, topic="childcare"))
            if has_child:
                session.add(
                    Child(
                        resident_id=person.id,
                        birth_year=2021,
                        birth_month=4,
                        birth_month_index=2021 * 12 + 3,
                    )
                )


def compose_data(token: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": token,
        "title": "乳幼児健診",
        "topic": "childcare",
        "channels": ["line", "fcm", "email"],
        "channel_policy": "all",
        "ja_title": "乳幼児健診のお知らせ",
        "ja_body": "{{ resident.ward }}の3歳児健診は来月です。",
        "ja_url": "https://www.city.kawasaki.jp/kenshin",
        "en_title": "Health check",
        "en_body": "Check-up in {{ resident.ward }} next month.",
        "action": "preview",
    }
    data.update(extra)
    return data


async def test_compose_page_shows_the_builder(console: Console) -> None:
    await console.sign_in("pr")
    html = await console.get_html("/console/broadcasts/new")
    assert 'name="wards" value="141313"' in html and "川崎区" in html
    assert '<label for="age_min_years">' in html
    assert "届く見込みの人数" in html


async def test_preview_renders_every_channel_for_the_sample_ward(console: Console) -> None:
    token = await console.sign_in("pr")
    _, _, html = await console.post_form(
        "/console/broadcasts/new", compose_data(token, wards=[NAKAHARA]), status=200
    )
    assert html.count('class="line-bubble"') == 2  # ja and en
    assert "中原区の3歳児健診は来月です。" in html  # placeholder rendered
    assert "Check-up in Nakahara-ku next month." in html
    assert 'class="notification-title">乳幼児健診のお知らせ<' in html
    assert 'class="mail-subject">乳幼児健診のお知らせ<' in html


async def test_preview_escapes_what_staff_wrote(console: Console) -> None:
    token = await console.sign_in("pr")
    _, _, html = await console.post_form(
        "/console/broadcasts/new",
        compose_data(token, ja_body="<script>alert(1)</script>"),
        status=200,
    )
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_template_error_is_named(console: Console) -> None:
    token = await console.sign_in("pr")
    _, _, html = await console.post_form(
        "/console/broadcasts/new", compose_data(token, ja_body="{{ resident.nmae }}"), status=200
    )
    assert 'role="alert"' in html
    assert "content.ja.body" in html


async def test_reach_counts_consented_endpoints_in_the_segment(console: Console) -> None:
    await seed_residents(console)
    token = await console.sign_in("pr")
    data = compose_data(
        token, wards=[NAKAHARA], age_min_years="3", age_max_years="5", age_max_months="11"
    )
    resp = await console.client.post(
        "/console/reach", data=data, headers={"Accept": "application/json"}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["total"] == 2
    assert body["reachable"] == 2
    assert {c["channel"]: c["count"] for c in body["by_channel"]} == {
        "line": 2,
        "fcm": 0,
        "email": 1,
    }
    assert body["by_ward"] == [{"ward": "中原区", "count": 2}]


async def test_reach_names_an_upside_down_age_range(console: Console) -> None:
    token = await console.sign_in("pr")
    data = compose_data(token, age_min_years="5", age_max_years="3")
    resp = await console.client.post("/console/reach", data=data)
    assert resp.status == 422
    assert "age_max_years" in (await resp.json())["fields"]
    _, _, html = await console.post_form("/console/broadcasts/new", data, status=200)
    assert 'aria-invalid="true"' in html


async def test_reach_needs_the_csrf_token(console: Console) -> None:
    await console.sign_in("pr")
    resp = await console.client.post("/console/reach", data={"wards": NAKAHARA})
    assert resp.status == 403


async def test_analyst_cannot_open_compose(console: Console) -> None:
    await console.sign_in("analyst")
    html = await console.get_html("/console/broadcasts/new", status=403)
    assert "権限がありません" in html
