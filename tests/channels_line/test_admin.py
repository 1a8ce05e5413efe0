"""Rich menu operations and insight reads of the LINE channel, against the simulator."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest

from channels.base import SendContext
from channels.line import LineChannel
from notify.errors import PermanentChannelError
from sandbox.line import LineConfig
from sandbox.line.state import JST
from tests.sandbox_line.helpers import menu_body, png

from .helpers import TEXT, Line, recipients, users


async def links(line: Line, *user_ids: str) -> dict:
    return await line.control("GET", "richmenu/links", params=[("user", u) for u in user_ids])


async def test_create_menu_with_image_and_make_it_default(channel: LineChannel, line: Line) -> None:
    image = png()
    menu_id = await channel.create_rich_menu(menu_body("平常時"), image)
    assert await channel.rich_menu_image(menu_id) == image
    [menu] = await channel.list_rich_menus()
    assert menu["richMenuId"] == menu_id and menu["name"] == "平常時"
    assert await channel.default_rich_menu_id() is None
    await channel.set_default_rich_menu(menu_id)
    assert await channel.default_rich_menu_id() == menu_id
    assert (await links(line, users(1)[0]))["shown"] == {users(1)[0]: menu_id}
    await channel.cancel_default_rich_menu()
    assert await channel.default_rich_menu_id() is None
    await channel.delete_rich_menu(menu_id)
    assert await channel.list_rich_menus() == []


async def test_a_refused_image_leaves_no_half_made_menu(channel: LineChannel) -> None:
    with pytest.raises(PermanentChannelError) as caught:
        await channel.create_rich_menu(menu_body(), png(600, 300))
    assert caught.value.provider_code == "http_400"
    assert await channel.list_rich_menus() == []


async def test_bulk_link_and_unlink_in_chunks_of_500(channel: LineChannel, line: Line) -> None:
    menu_id = await channel.create_rich_menu(menu_body("タブ"), png())
    everyone = users(1200)
    await channel.link_rich_menu(menu_id, everyone)
    log = await line.control("GET", "log", params={"path": "/v2/bot/richmenu/bulk/link"})
    assert [len(e["body"]["userIds"]) for e in log["entries"]] == [500, 500, 200]
    assert (await links(line))["byMenu"] == {menu_id: 1200}
    assert await channel.rich_menu_of_user(everyone[0]) == menu_id
    await channel.unlink_rich_menus(everyone[:700])
    assert (await links(line))["byMenu"] == {menu_id: 500}
    assert await channel.rich_menu_of_user(everyone[0]) is None


async def test_aliases(channel: LineChannel) -> None:
    first = await channel.create_rich_menu(menu_body("a"), png())
    second = await channel.create_rich_menu(menu_body("b"), png())
    await channel.create_rich_menu_alias("tab-a", first)
    await channel.update_rich_menu_alias("tab-a", second)
    assert await channel.rich_menu_aliases() == {"tab-a": second}
    await channel.delete_rich_menu_alias("tab-a")
    assert await channel.rich_menu_aliases() == {}


async def test_batch_switches_a_tab_set_and_reports_progress(
    channel: LineChannel, line: Line
) -> None:
    normal = [await channel.create_rich_menu(menu_body(f"n{i}"), png()) for i in range(2)]
    disaster = [await channel.create_rich_menu(menu_body(f"d{i}"), png()) for i in range(2)]
    await channel.link_rich_menu(normal[0], users(30))
    await channel.link_rich_menu(normal[1], users(10, start=30))
    operations = [
        {"type": "link", "from": normal[0], "to": disaster[0]},
        {"type": "link", "from": normal[1], "to": disaster[1]},
    ]
    await channel.validate_rich_menu_batch(operations)
    request_id = await channel.rich_menu_batch(operations)
    uuid.UUID(request_id)
    for _ in range(100):
        status = await channel.rich_menu_batch_progress(request_id)
        if status.phase != "ongoing":
            break
        await asyncio.sleep(0.01)
    assert status.phase == "succeeded" and status.completed_time is not None
    assert (await links(line))["byMenu"] == {disaster[0]: 30, disaster[1]: 10}


@pytest.mark.parametrize("config", [LineConfig(fail_next_batch_after_ops=0)])
async def test_a_failed_batch_is_resumed(channel: LineChannel, line: Line) -> None:
    menus = [await channel.create_rich_menu(menu_body(name), png()) for name in "ab"]
    await channel.link_rich_menu(menus[0], users(5))
    operations = [{"type": "link", "from": menus[0], "to": menus[1]}]
    request_id = await channel.rich_menu_batch(operations, resume_request_key="switch-1")
    await asyncio.sleep(0.05)
    assert (await channel.rich_menu_batch_progress(request_id)).phase == "failed"
    request_id = await channel.rich_menu_batch(operations, resume_request_key="switch-1")
    await asyncio.sleep(0.05)
    assert (await channel.rich_menu_batch_progress(request_id)).phase == "succeeded"
    assert (await links(line))["byMenu"] == {menus[1]: 5}


@pytest.mark.parametrize("config", [LineConfig(open_probability=1.0)])
async def test_unit_statistics_usage_and_names(channel: LineChannel) -> None:
    for unit in ("bc4_ward1", "bc4_ward2"):
        context = SendContext(4, idempotency_key=str(uuid.uuid4()), aggregation_unit=unit)
        await channel.send_batch(recipients(users(25)), TEXT, context)
    today = datetime.now(JST).date()
    stats = await channel.aggregation_unit_statistics("bc4_ward1", today, today)
    assert (stats.unique_impressions, stats.impressions, stats.unique_clicks) == (25, 25, None)
    assert await channel.aggregation_unit_usage() == 2
    assert await channel.aggregation_unit_names() == ["bc4_ward1", "bc4_ward2"]


async def test_unit_names_follow_the_continuation_token(channel: LineChannel) -> None:
    for index in range(105):
        context = SendContext(5, aggregation_unit=f"u{index}")
        await channel.send_batch(recipients(users(1)), TEXT, context)
    names = await channel.aggregation_unit_names()
    assert names == [f"u{index}" for index in range(105)]


async def test_follower_statistics(channel: LineChannel, line: Line) -> None:
    await line.control("POST", "followers", json={"generate": 50})
    assert (await channel.follower_statistics(datetime.now(JST).date())).status == "unready"
    await line.control("POST", "clock", json={"advance_s": 86400})
    stats = await channel.follower_statistics()
    assert (stats.status, stats.followers, stats.blocks) == ("ready", 50, 0)
