"""Opens through the hub's real endpoints; forged, replayed and malformed input is refused
and not counted."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from channels.base import EmailMessage
from channels.email_mime import personalise
from notify.db import Database
from notify.settings import Settings
from notify.stats import tracking
from tests.conftest import count_rows
from tests.stats.conftest import add_deliveries, make_broadcast, make_targets

LINK = "https://city.example.jp/kenshin?year=2025&lang=ja"
CONTENT = {"ja": {"email": {"html": f'<a href="{LINK.replace("&", "&amp;")}">詳細</a>'}}}
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"


def _path(url: str) -> str:
    return url.removeprefix("http://hub.test")


async def _kinds(db: Database) -> list[tuple[int, int, str, str]]:
    from sqlalchemy import select

    from notify.stats.tables import OpenEvent

    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(
                OpenEvent.broadcast_id, OpenEvent.endpoint_id, OpenEvent.channel, OpenEvent.kind
            ).order_by(OpenEvent.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_app_open_is_counted_once_per_device(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    broadcast = await make_broadcast(hub_db)
    device, other = await make_targets(hub_db, "fcm", 2)
    await add_deliveries(hub_db, broadcast, [device, other])
    ref = tracking.app_open_ref(stats_settings, broadcast, device.endpoint_id)
    auth = {"Authorization": f"Bearer {device.credential}"}

    resp = await hub.post(
        "/api/app/opens", json={"broadcast_id": broadcast, "ref": ref}, headers=auth
    )
    assert resp.status == 201, await resp.text()
    assert await resp.json() == {"broadcast_id": broadcast, "counted": True}

    replay = await hub.post(
        "/api/app/opens", json={"broadcast_id": broadcast, "ref": ref}, headers=auth
    )
    assert replay.status == 409
    assert (await replay.json())["error"]["code"] == "conflict"
    assert await _kinds(hub_db) == [(broadcast, device.endpoint_id, "fcm", "open")]


async def test_forged_and_malformed_app_reports_are_refused(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    broadcast = await make_broadcast(hub_db)
    other_broadcast = await make_broadcast(hub_db, "別件")
    device, thief = await make_targets(hub_db, "fcm", 2)
    ref = tracking.app_open_ref(stats_settings, broadcast, device.endpoint_id)
    mine = {"Authorization": f"Bearer {device.credential}"}
    cases: list[tuple[dict[str, Any], Any, int]] = [
        ({}, {"broadcast_id": broadcast, "ref": ref}, 401),  # no device credential
        (
            {"Authorization": f"Bearer dev_{device.endpoint_id}_wrong"},
            {"broadcast_id": broadcast, "ref": ref},
            401,
        ),
        # another device replays a stolen reference
        (
            {"Authorization": f"Bearer {thief.credential}"},
            {"broadcast_id": broadcast, "ref": ref},
            403,
        ),
        (
            mine,
            {"broadcast_id": other_broadcast, "ref": ref},
            403,
        ),  # reference of another broadcast
        (mine, {"broadcast_id": broadcast, "ref": ref[:-2] + "AA"}, 403),  # forged MAC
        (
            mine,
            {
                "broadcast_id": broadcast,
                "ref": tracking.sign_token("wrong-secret", "app", broadcast, device.endpoint_id),
            },
            403,
        ),
        # a pixel token is not an app reference
        (
            mine,
            {
                "broadcast_id": broadcast,
                "ref": tracking.sign_token(
                    stats_settings.resolved_secret(), "open", broadcast, device.endpoint_id
                ),
            },
            403,
        ),
        (mine, {"broadcast_id": broadcast}, 422),
        (mine, {"broadcast_id": "x", "ref": ref}, 422),
        (mine, {"broadcast_id": broadcast, "ref": ref, "extra": 1}, 422),
        (mine, {"broadcast_id": broadcast, "ref": "<script>alert(1)</script>"}, 422),
        (mine, {"broadcast_id": broadcast, "ref": "A" * 500}, 422),
        (mine, [1, 2], 422),
    ]
    for headers, body, status in cases:
        resp = await hub.post("/api/app/opens", json=body, headers=headers)
        assert resp.status == status, (body, await resp.text())
    resp = await hub.post(
        "/api/app/opens", data=b"{not json", headers=mine | {"Content-Type": "application/json"}
    )
    assert resp.status == 400
    # A valid reference for a broadcast that does not exist (deleted): 404, nothing stored.
    gone = tracking.app_open_ref(stats_settings, 999_999, device.endpoint_id)
    resp = await hub.post(
        "/api/app/opens", json={"broadcast_id": 999_999, "ref": gone}, headers=mine
    )
    assert resp.status == 404
    assert await count_rows(hub_db, "stats_opens") == 0


async def test_pixel_counts_people_and_flags_privacy_proxies(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    broadcast = await make_broadcast(hub_db, content=CONTENT)
    reader, apple_user = await make_targets(hub_db, "email", 2)
    await add_deliveries(hub_db, broadcast, [reader, apple_user])
    pixel = _path(
        tracking.email_links(stats_settings, broadcast, reader.endpoint_id)["open_pixel_url"]
    )
    for _ in range(3):  # mail clients fetch images again: counted once, answered every time
        resp = await hub.get(pixel, headers={"User-Agent": IPHONE})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/gif"
        assert (await resp.read()) == tracking.PIXEL_GIF
        assert "no-store" in resp.headers["Cache-Control"]
    proxied = _path(
        tracking.email_links(stats_settings, broadcast, apple_user.endpoint_id)["open_pixel_url"]
    )
    resp = await hub.get(proxied, headers={"User-Agent": "Mozilla/5.0"})  # Apple MPP preload
    assert resp.status == 200
    assert await _kinds(hub_db) == [
        (broadcast, reader.endpoint_id, "email", "open"),
        (broadcast, apple_user.endpoint_id, "email", "proxy_open"),
    ]


async def test_forged_pixels_are_refused(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    broadcast = await make_broadcast(hub_db, content=CONTENT)
    (reader,) = await make_targets(hub_db, "email", 1)
    links = tracking.email_links(stats_settings, broadcast, reader.endpoint_id)
    token = links["open_pixel_url"].rsplit("/", 1)[1].removesuffix(".gif")
    click_token = links["click_url_prefix"].split("/c/")[1].removesuffix("?u=")
    for bad in (
        token[:-1] + ("B" if token[-1] == "A" else "A"),
        click_token,  # a click token is not a pixel token
        "short",
        "A" * 60,
        tracking.sign_token("not-the-secret", "open", broadcast, reader.endpoint_id),
        tracking.sign_token(stats_settings.resolved_secret(), "open", 424242, reader.endpoint_id),
    ):
        resp = await hub.get(f"/o/{bad}.gif")
        assert resp.status == 404, bad
    assert (await hub.get(f"/o/{token}.png")).status == 404
    assert await count_rows(hub_db, "stats_opens") == 0


async def test_click_redirects_only_to_the_broadcasts_own_links(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    broadcast = await make_broadcast(hub_db, content=CONTENT)
    other = await make_broadcast(
        hub_db, content={"ja": {"email": {"text": "https://other.example/"}}}
    )
    (reader,) = await make_targets(hub_db, "email", 1)
    prefix = _path(
        tracking.email_links(stats_settings, broadcast, reader.endpoint_id)["click_url_prefix"]
    )
    good = prefix + quote(LINK, safe="")
    for _ in range(2):
        resp = await hub.get(good, allow_redirects=False)
        assert resp.status == 302
        assert resp.headers["Location"] == LINK
    for target in (
        "https://evil.example/phish",
        "https://other.example/",  # a link of another broadcast
        "//evil.example/",
        "javascript:alert(1)",
        LINK + "#x",
        "https://city.example.jp@evil.example/kenshin",
    ):
        resp = await hub.get(prefix + quote(target, safe=""), allow_redirects=False)
        assert resp.status in (403, 422), target
        assert "Location" not in resp.headers
    assert (await hub.get(prefix.removesuffix("?u="), allow_redirects=False)).status == 422
    forged = prefix.replace("/c/", "/c/X")
    assert (await hub.get(forged + quote(LINK, safe=""), allow_redirects=False)).status == 404
    other_token = tracking.sign_token(
        stats_settings.resolved_secret(), "click", other, reader.endpoint_id
    )
    resp = await hub.get(f"/c/{other_token}?u=" + quote(LINK, safe=""), allow_redirects=False)
    assert resp.status == 403
    assert await _kinds(hub_db) == [(broadcast, reader.endpoint_id, "email", "click")]


async def test_a_staff_link_that_unescapes_to_control_characters_is_never_a_redirect(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    # "&#13;&#10;" in a link of the content unescapes to CR LF: as a Location header it
    # would be an injection (aiohttp refuses to send it and drops the connection).
    text = "https://city.example.jp/a&#13;&#10;Set-Cookie:x=1 と https://city.example.jp/&#x3042;"
    broadcast = await make_broadcast(hub_db, content={"ja": {"email": {"text": text}}})
    (reader,) = await make_targets(hub_db, "email", 1)
    prefix = _path(
        tracking.email_links(stats_settings, broadcast, reader.endpoint_id)["click_url_prefix"]
    )
    links = tracking.broadcast_links({"ja": {"email": {"text": text}}})
    injected = "https://city.example.jp/a\r\nSet-Cookie:x=1"
    assert injected in links
    resp = await hub.get(prefix + quote(injected, safe=""), allow_redirects=False)
    assert resp.status == 403
    assert "Location" not in resp.headers
    # A non-ASCII character from a reference is sent percent-encoded.
    resp = await hub.get(
        prefix + quote("https://city.example.jp/あ", safe=""), allow_redirects=False
    )
    assert resp.status == 302
    assert resp.headers["Location"] == "https://city.example.jp/%E3%81%82"


async def test_a_broadcast_wide_reference_counts_only_devices_it_was_sent_to(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    broadcast = await make_broadcast(hub_db)
    device, stranger = await make_targets(hub_db, "fcm", 2)
    await add_deliveries(hub_db, broadcast, [device])
    ref = tracking.broadcast_open_ref(stats_settings, broadcast)
    body = {"broadcast_id": broadcast, "ref": ref}
    resp = await hub.post(
        "/api/app/opens", json=body, headers={"Authorization": f"Bearer {stranger.credential}"}
    )
    assert resp.status == 403
    mine = {"Authorization": f"Bearer {device.credential}"}
    assert (await hub.post("/api/app/opens", json=body, headers=mine)).status == 201
    assert (await hub.post("/api/app/opens", json=body, headers=mine)).status == 409
    assert await _kinds(hub_db) == [(broadcast, device.endpoint_id, "fcm", "open")]


async def test_links_the_email_adapter_writes_lead_through_the_hub(
    hub: TestClient[Any, Any], hub_db: Database, stats_settings: Settings
) -> None:
    """The email channel's own rewriting (channels.email_mime) and the hub's tracker agree."""
    html_body = (
        f'<html><body><p>受診は<a href="{LINK.replace("&", "&amp;")}">こちら</a>。</p>'
        "</body></html>"
    )
    broadcast = await make_broadcast(hub_db, content={"ja": {"email": {"html": html_body}}})
    (reader,) = await make_targets(hub_db, "email", 1)
    await add_deliveries(hub_db, broadcast, [reader])
    extra = tracking.email_links(stats_settings, broadcast, reader.endpoint_id, reader.address[:8])
    _, personal = personalise(EmailMessage("件名", "本文", html_body), extra)
    assert personal is not None
    hrefs = [h for h in re.findall(r'href="([^"]+)"', personal) if "/c/" in h]
    (pixel,) = re.findall(r'<img src="([^"]+)"', personal)
    assert len(hrefs) == 1
    resp = await hub.get(_path(html_lib.unescape(hrefs[0])), allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == LINK
    resp = await hub.get(_path(html_lib.unescape(pixel)), headers={"User-Agent": IPHONE})
    assert resp.status == 200
    assert await _kinds(hub_db) == [
        (broadcast, reader.endpoint_id, "email", "click"),
        (broadcast, reader.endpoint_id, "email", "open"),
    ]
