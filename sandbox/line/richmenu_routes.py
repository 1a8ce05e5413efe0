"""Rich menu endpoints (API host) and image upload/download (data host, same port here)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .errors import NOT_FOUND, LineApiError, body_errors, invalid
from .message_routes import BODY, REQUEST_ID
from .richmenus import BatchProgress
from .rules import USER_ID, rich_menu_details, rich_menu_image_problem, user_id_details
from .state import LINE_STATE, LineState

_OK = web.json_response  # LINE answers most rich menu calls with an empty JSON object


def _checked_menu(request: web.Request) -> dict:
    details = rich_menu_details(request[BODY])
    if details:
        raise body_errors(details)
    return dict(request[BODY])


async def create_menu(request: web.Request) -> web.Response:
    menu_id = request.app[LINE_STATE].richmenus.create(_checked_menu(request))
    return web.json_response({"richMenuId": menu_id})


async def validate_menu(request: web.Request) -> web.Response:
    _checked_menu(request)
    return _OK({})


async def list_menus(request: web.Request) -> web.Response:
    return web.json_response({"richmenus": list(request.app[LINE_STATE].richmenus.menus.values())})


async def get_menu(request: web.Request) -> web.Response:
    return web.json_response(
        request.app[LINE_STATE].richmenus.get(request.match_info["richMenuId"])
    )


async def delete_menu(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.delete(request.match_info["richMenuId"])
    return _OK({})


async def upload_image(request: web.Request) -> web.Response:
    data = await request.read()
    problem = rich_menu_image_problem(request.content_type, data)
    if problem is not None:
        raise LineApiError(400, problem)
    request.app[LINE_STATE].richmenus.set_image(
        request.match_info["richMenuId"], request.content_type, data
    )
    return _OK({})


async def download_image(request: web.Request) -> web.Response:
    image = request.app[LINE_STATE].richmenus.images.get(request.match_info["richMenuId"])
    if image is None:
        raise LineApiError(404, NOT_FOUND)
    return web.Response(body=image[1], content_type=image[0])


async def set_default(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.set_default(request.match_info["richMenuId"])
    return _OK({})


async def get_default(request: web.Request) -> web.Response:
    default = request.app[LINE_STATE].richmenus.default
    if default is None:
        raise LineApiError(404, "no default richmenu")
    return web.json_response({"richMenuId": default})


async def cancel_default(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.default = None
    return _OK({})


def _user(request: web.Request) -> str:
    user_id = request.match_info["userId"]
    if not USER_ID.match(user_id):
        raise LineApiError(400, "The value for the 'userId' parameter is invalid")
    return user_id


async def get_user_menu(request: web.Request) -> web.Response:
    menu_id = request.app[LINE_STATE].richmenus.menu_of(_user(request))
    if menu_id is None:
        raise LineApiError(404, "the user has no richmenu")
    return web.json_response({"richMenuId": menu_id})


async def link_user(request: web.Request) -> web.Response:
    user_id = _user(request)
    request.app[LINE_STATE].richmenus.link([user_id], request.match_info["richMenuId"])
    return _OK({})


async def unlink_user(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.unlink([_user(request)])
    return _OK({})


def _bulk_users(request: web.Request) -> list[str]:
    users: list[str] = request[BODY]["userIds"]
    details = user_id_details(users, "userIds")
    if details:
        raise body_errors(details)
    return users


async def bulk_link(request: web.Request) -> web.Response:
    users = _bulk_users(request)
    request.app[LINE_STATE].richmenus.link(users, request[BODY]["richMenuId"], status=400)
    return _OK({}, status=202)


async def bulk_unlink(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.unlink(_bulk_users(request))
    return _OK({}, status=202)


async def create_alias(request: web.Request) -> web.Response:
    body = request[BODY]
    request.app[LINE_STATE].richmenus.create_alias(body["richMenuAliasId"], body["richMenuId"])
    return _OK({})


async def list_aliases(request: web.Request) -> web.Response:
    store = request.app[LINE_STATE].richmenus
    return web.json_response({"aliases": [store.alias(a) for a in store.aliases]})


async def get_alias(request: web.Request) -> web.Response:
    alias_id = request.match_info["richMenuAliasId"]
    return web.json_response(request.app[LINE_STATE].richmenus.alias(alias_id))


async def update_alias(request: web.Request) -> web.Response:
    alias_id = request.match_info["richMenuAliasId"]
    request.app[LINE_STATE].richmenus.update_alias(alias_id, request[BODY]["richMenuId"])
    return _OK({})


async def delete_alias(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.delete_alias(request.match_info["richMenuAliasId"])
    return _OK({})


async def _run_batch(state: LineState, progress: BatchProgress) -> None:
    fail_after = state.config.fail_next_batch_after_ops
    state.config.fail_next_batch_after_ops = None  # a one-shot failure, so a resume can succeed
    succeeded = await state.richmenus.run_batch(progress, fail_after)
    delay = progress.not_before - state.clock.wall()
    if delay > 0:
        await asyncio.sleep(delay)
    progress.phase = "succeeded" if succeeded else "failed"
    progress.completed_at = state.clock.wall()


async def batch(request: web.Request) -> web.Response:
    state, body = request.app[LINE_STATE], request[BODY]
    store, key = state.richmenus, body.get("resumeRequestKey")
    prior = store.by_resume_key.get(key) if key else None
    if prior is not None and prior.phase != "failed":
        raise invalid("resumeRequestKey", f"the request with this key is {prior.phase}")
    operations = prior.operations if prior is not None else body["operations"]
    store.check_operations(operations)
    now = state.clock.wall()
    progress = BatchProgress(request[REQUEST_ID], operations, now, key)
    progress.done_ops = prior.done_ops if prior is not None else 0
    progress.not_before = now + state.config.batch_duration_s
    store.batches[progress.request_id] = progress
    if key:
        store.by_resume_key[key] = progress
    state.spawn(_run_batch(state, progress))
    return _OK({}, status=202)


async def validate_batch(request: web.Request) -> web.Response:
    request.app[LINE_STATE].richmenus.check_operations(request[BODY]["operations"])
    return _OK({})


async def batch_progress(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    progress = state.richmenus.batches.get(request.query["requestId"])
    if progress is None:
        raise LineApiError(404, NOT_FOUND)
    answer = {"phase": progress.phase, "acceptedTime": state.clock.iso(progress.accepted_at)}
    if progress.completed_at is not None:
        answer["completedTime"] = state.clock.iso(progress.completed_at)
    return web.json_response(answer)


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    base = "/v2/bot/richmenu"
    add("POST", base, create_menu)
    add("POST", base + "/validate", validate_menu)
    add("GET", base + "/list", list_menus)
    add("POST", base + "/bulk/link", bulk_link)
    add("POST", base + "/bulk/unlink", bulk_unlink)
    add("POST", base + "/batch", batch)
    add("POST", base + "/validate/batch", validate_batch)
    add("GET", base + "/progress/batch", batch_progress)
    add("POST", base + "/alias", create_alias)
    add("GET", base + "/alias/list", list_aliases)
    add("GET", base + "/alias/{richMenuAliasId}", get_alias)
    add("POST", base + "/alias/{richMenuAliasId}", update_alias)
    add("DELETE", base + "/alias/{richMenuAliasId}", delete_alias)
    add("GET", base + "/{richMenuId}", get_menu)
    add("DELETE", base + "/{richMenuId}", delete_menu)
    add("POST", base + "/{richMenuId}/content", upload_image)
    add("GET", base + "/{richMenuId}/content", download_image)
    add("POST", "/v2/bot/user/all/richmenu/{richMenuId}", set_default)
    add("GET", "/v2/bot/user/all/richmenu", get_default)
    add("DELETE", "/v2/bot/user/all/richmenu", cancel_default)
    add("GET", "/v2/bot/user/{userId}/richmenu", get_user_menu)
    add("DELETE", "/v2/bot/user/{userId}/richmenu", unlink_user)
    add("POST", "/v2/bot/user/{userId}/richmenu/{richMenuId}", link_user)
