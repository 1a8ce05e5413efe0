"""Rich menus in the LINE simulator: objects, images, default, links, aliases, batches."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.line import LineConfig

from .helpers import Line, menu_body, png, user


async def make_menu(line: Line, name: str = "normal", image: bool = True) -> str:
    status, _, body = await line.call("POST", "/v2/bot/richmenu", json=menu_body(name))
    assert status == 200, body
    menu_id = body["richMenuId"]
    if image:
        status, _, answer = await line.call(
            "POST",
            f"/v2/bot/richmenu/{menu_id}/content",
            data=png(),
            headers={"Content-Type": "image/png"},
        )
        assert status == 200, answer
    return str(menu_id)


async def links(line: Line, *users: str) -> dict:
    return await line.control("GET", "richmenu/links", params=[("user", u) for u in users])


@pytest.mark.parametrize(
    ("change", "prop"),
    [
        ({"size": {"width": 700, "height": 400}}, "size"),
        ({"size": {"width": 2500, "height": 2000}}, "size"),  # narrower than 1.45:1
        ({"chatBarText": "とても長いチャットバーのテキスト"}, "chatBarText"),
        ({"name": None}, "name"),
    ],
)
async def test_rich_menu_objects_are_checked(line: Line, change: dict, prop: str) -> None:
    body = menu_body() | change
    body = {k: v for k, v in body.items() if v is not None}
    status, _, answer = await line.call("POST", "/v2/bot/richmenu", json=body)
    assert status == 400
    assert prop in [d["property"] for d in answer["details"]]
    status, _, answer = await line.call("POST", "/v2/bot/richmenu/validate", json=body)
    assert status == 400
    assert (await line.call("POST", "/v2/bot/richmenu/validate", json=menu_body()))[0] == 200


async def test_image_upload_rules_and_download(line: Line) -> None:
    menu_id = await make_menu(line, image=False)
    path = f"/v2/bot/richmenu/{menu_id}/content"
    jpeg_claim = {"Content-Type": "image/jpeg"}
    assert (await line.call("POST", path, data=png(), headers=jpeg_claim))[0] == 400
    small = {"Content-Type": "image/png"}
    assert (await line.call("POST", path, data=png(600, 300), headers=small))[0] == 400
    assert (await line.call("POST", path, data=b"not an image", headers=small))[0] == 400
    image = png()
    assert (await line.call("POST", path, data=image, headers=small))[0] == 200
    status, _, body = await line.call("POST", path, data=image, headers=small)
    assert status == 400 and "already" in body["message"]  # images cannot be replaced
    status, headers, data = await line.call("GET", path)
    assert status == 200 and data == image and headers["Content-Type"] == "image/png"


async def test_default_menu_and_per_user_links(line: Line) -> None:
    bare = await make_menu(line, "no image", image=False)
    status, _, body = await line.call("POST", f"/v2/bot/user/all/richmenu/{bare}")
    assert status == 400 and "image" in body["message"]
    normal, tab = await make_menu(line, "normal"), await make_menu(line, "tab")
    assert (await line.call("GET", "/v2/bot/user/all/richmenu"))[0] == 404
    assert (await line.call("POST", f"/v2/bot/user/all/richmenu/{normal}"))[0] == 200
    assert (await line.call("GET", "/v2/bot/user/all/richmenu"))[2] == {"richMenuId": normal}
    assert (await line.call("POST", f"/v2/bot/user/{user(1)}/richmenu/{tab}"))[0] == 200
    assert (await line.call("GET", f"/v2/bot/user/{user(1)}/richmenu"))[2] == {"richMenuId": tab}
    assert (await line.call("GET", f"/v2/bot/user/{user(2)}/richmenu"))[0] == 404
    seen = await links(line, user(1), user(2))
    assert seen["shown"] == {user(1): tab, user(2): normal}  # a per-user link beats the default
    assert (await line.call("DELETE", f"/v2/bot/user/{user(1)}/richmenu"))[0] == 200
    assert (await links(line, user(1)))["shown"] == {user(1): normal}
    assert (await line.call("DELETE", "/v2/bot/user/all/richmenu"))[0] == 200
    assert (await links(line, user(1)))["shown"] == {user(1): None}


async def test_bulk_link_and_unlink_answer_202(line: Line) -> None:
    menu_id = await make_menu(line)
    users = [user(i) for i in range(500)]
    body = {"richMenuId": menu_id, "userIds": users}
    status, _, answer = await line.call("POST", "/v2/bot/richmenu/bulk/link", json=body)
    assert (status, answer) == (202, {})
    assert (await links(line))["byMenu"] == {menu_id: 500}
    too_many = {"richMenuId": menu_id, "userIds": [*users, user(500)]}
    assert (await line.call("POST", "/v2/bot/richmenu/bulk/link", json=too_many))[0] == 400
    status, _, _ = await line.call(
        "POST", "/v2/bot/richmenu/bulk/unlink", json={"userIds": users[:100]}
    )
    assert status == 202
    assert (await links(line))["byMenu"] == {menu_id: 400}
    missing = {"richMenuId": "richmenu-00000000000000000000000000000000", "userIds": users[:1]}
    assert (await line.call("POST", "/v2/bot/richmenu/bulk/link", json=missing))[0] == 400


async def test_aliases_crud(line: Line) -> None:
    first, second = await make_menu(line, "a"), await make_menu(line, "b")
    body = {"richMenuAliasId": "tab-news", "richMenuId": first}
    assert (await line.call("POST", "/v2/bot/richmenu/alias", json=body))[0] == 200
    assert (await line.call("POST", "/v2/bot/richmenu/alias", json=body))[0] == 400  # taken
    bad = {"richMenuAliasId": "Tab News!", "richMenuId": first}
    assert (await line.call("POST", "/v2/bot/richmenu/alias", json=bad))[0] == 400
    update = {"richMenuId": second}
    assert (await line.call("POST", "/v2/bot/richmenu/alias/tab-news", json=update))[0] == 200
    _, _, alias = await line.call("GET", "/v2/bot/richmenu/alias/tab-news")
    assert alias == {"richMenuAliasId": "tab-news", "richMenuId": second}
    _, _, listed = await line.call("GET", "/v2/bot/richmenu/alias/list")
    assert listed == {"aliases": [alias]}
    assert (await line.call("DELETE", "/v2/bot/richmenu/alias/tab-news"))[0] == 200
    assert (await line.call("GET", "/v2/bot/richmenu/alias/tab-news"))[0] == 404


async def test_list_get_and_delete(line: Line) -> None:
    menu_id = await make_menu(line)
    await line.call("POST", f"/v2/bot/user/all/richmenu/{menu_id}")
    _, _, listed = await line.call("GET", "/v2/bot/richmenu/list")
    assert [m["richMenuId"] for m in listed["richmenus"]] == [menu_id]
    _, _, menu = await line.call("GET", f"/v2/bot/richmenu/{menu_id}")
    assert menu["name"] == "normal" and menu["size"] == {"width": 2500, "height": 843}
    assert (await line.call("DELETE", f"/v2/bot/richmenu/{menu_id}"))[0] == 200
    assert (await line.call("GET", f"/v2/bot/richmenu/{menu_id}"))[0] == 404
    assert (await line.call("GET", "/v2/bot/user/all/richmenu"))[0] == 404


async def wait_for_batch(line: Line, request_id: str) -> dict:
    for _ in range(100):
        _, _, progress = await line.call(
            "GET", "/v2/bot/richmenu/progress/batch", params={"requestId": request_id}
        )
        if progress["phase"] != "ongoing":
            return dict(progress)
        await asyncio.sleep(0.01)
    raise AssertionError("batch still ongoing")


async def test_batch_link_moves_every_user_of_a_menu(line: Line) -> None:
    news, weather, disaster_news, disaster_weather = [
        await make_menu(line, name) for name in ("news", "weather", "d-news", "d-weather")
    ]
    for index in range(30):
        target = news if index % 3 else weather
        await line.call("POST", f"/v2/bot/user/{user(index)}/richmenu/{target}")
    operations = [
        {"type": "link", "from": news, "to": disaster_news},
        {"type": "link", "from": weather, "to": disaster_weather},
    ]
    status, _, _ = await line.call(
        "POST", "/v2/bot/richmenu/validate/batch", json={"operations": operations}
    )
    assert status == 200
    status, headers, body = await line.call(
        "POST", "/v2/bot/richmenu/batch", json={"operations": operations}
    )
    assert (status, body) == (202, {})
    progress = await wait_for_batch(line, headers["x-line-request-id"])
    assert progress["phase"] == "succeeded" and progress["completedTime"].endswith("Z")
    assert (await links(line))["byMenu"] == {disaster_news: 20, disaster_weather: 10}
    status, headers, _ = await line.call(
        "POST", "/v2/bot/richmenu/batch", json={"operations": [{"type": "unlinkAll"}]}
    )
    await wait_for_batch(line, headers["x-line-request-id"])
    assert (await links(line))["byMenu"] == {}


async def test_batch_refers_to_existing_menus_with_images(line: Line) -> None:
    menu_id = await make_menu(line)
    blank = await make_menu(line, "blank", image=False)
    for operations in (
        [{"type": "link", "from": menu_id, "to": "richmenu-missing"}],
        [{"type": "link", "from": menu_id, "to": blank}],
        [{"type": "link", "from": menu_id}],
    ):
        status, _, body = await line.call(
            "POST", "/v2/bot/richmenu/batch", json={"operations": operations}
        )
        assert status == 400, body


@pytest.mark.parametrize("config", [LineConfig(fail_next_batch_after_ops=1)])
async def test_failed_batch_is_resumed_with_its_resume_key(line: Line) -> None:
    a, b, c = [await make_menu(line, name) for name in "abc"]
    await line.call("POST", f"/v2/bot/user/{user(1)}/richmenu/{a}")
    await line.call("POST", f"/v2/bot/user/{user(2)}/richmenu/{b}")
    body = {
        "operations": [{"type": "link", "from": a, "to": c}, {"type": "unlink", "from": b}],
        "resumeRequestKey": "disaster-2026-1",
    }
    _, headers, _ = await line.call("POST", "/v2/bot/richmenu/batch", json=body)
    assert (await wait_for_batch(line, headers["x-line-request-id"]))["phase"] == "failed"
    assert (await links(line, user(1), user(2)))["links"] == {user(1): c, user(2): b}
    _, headers, _ = await line.call("POST", "/v2/bot/richmenu/batch", json=body)
    assert (await wait_for_batch(line, headers["x-line-request-id"]))["phase"] == "succeeded"
    assert (await links(line, user(1), user(2)))["links"] == {user(1): c, user(2): None}
    status, _, _ = await line.call("POST", "/v2/bot/richmenu/batch", json=body)
    assert status == 400  # that key's batch is done


async def test_batch_is_limited_to_3_an_hour(line: Line) -> None:
    menu_id = await make_menu(line)
    body = {"operations": [{"type": "unlink", "from": menu_id}]}
    for _ in range(3):
        assert (await line.call("POST", "/v2/bot/richmenu/batch", json=body))[0] == 202
    assert (await line.call("POST", "/v2/bot/richmenu/batch", json=body))[0] == 429
