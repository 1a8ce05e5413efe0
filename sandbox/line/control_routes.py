"""LINE-specific control routes under `/_sandbox/` (the shared ones come from sandbox.common).

- `POST /_sandbox/blocked` `{"add": [...], "remove": [...]}` - users who blocked the account
- `POST /_sandbox/followers` `{"add": [...], "generate": N}` - broadcast audience
- `POST /_sandbox/config` - `LineConfig` fields (open_probability, quota, seed, ...)
- `POST /_sandbox/clock` `{"advance_s": 3600}` - move time forward (rate windows, 24 h keys)
- `POST /_sandbox/faults/next` `{"count": 2, "kind": "error", "status": 500, "after_accept": true}`
- `GET  /_sandbox/richmenu/links?user=U...` - default menu, links, what each user sees
- `GET  /_sandbox/stats` - totals, "how many users got N messages", units, consumption
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from aiohttp import web

from sandbox.common import CONTROL_PREFIX, STATE_KEY

from .faults import FORCED_FAULTS, ForcedFault
from .state import LINE_STATE


async def _json_object(request: web.Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _bad(exc: Exception) -> web.Response:
    return web.json_response({"message": str(exc)}, status=400)


async def post_blocked(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    try:
        data = await _json_object(request)
    except ValueError as exc:
        return _bad(exc)
    if "set" in data:
        state.set_blocked(list(state.blocked - set(data["set"])), False)
        state.set_blocked(data["set"], True)
    state.set_blocked(data.get("add", []), True)
    state.set_blocked(data.get("remove", []), False)
    return web.json_response({"blocked": len(state.blocked)})


async def post_followers(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    try:
        data = await _json_object(request)
        generate = int(data.get("generate", 0))
    except (ValueError, TypeError) as exc:
        return _bad(exc)
    added = state.add_followers(data.get("add", []))
    first = len(state.followers)
    added += state.add_followers(f"U{index:032x}" for index in range(first, first + generate))
    names = data.get("displayNames", {})
    state.display_names.update(names if isinstance(names, dict) else {})
    return web.json_response({"followers": len(state.followers), "added": added})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[LINE_STATE].config))


async def post_config(request: web.Request) -> web.Response:
    state = request.app[LINE_STATE]
    try:
        data = await _json_object(request)
        state.config.update(data)
    except (ValueError, TypeError) as exc:
        return _bad(exc)
    if "seed" in data:
        state.rng.seed(state.config.seed)
    return web.json_response(asdict(state.config))


async def post_clock(request: web.Request) -> web.Response:
    clock = request.app[LINE_STATE].clock
    try:
        clock.offset_s += float((await _json_object(request)).get("advance_s", 0))
    except (ValueError, TypeError) as exc:
        return _bad(exc)
    return web.json_response({"offset_s": clock.offset_s})


async def post_next_faults(request: web.Request) -> web.Response:
    try:
        data = await _json_object(request)
        count = int(data.pop("count", 1))
        fault = ForcedFault.from_json(data)
    except (ValueError, TypeError) as exc:
        return _bad(exc)
    request.app[FORCED_FAULTS].add(fault, count)
    return web.json_response({"queued": len(request.app[FORCED_FAULTS].queue)})


async def get_links(request: web.Request) -> web.Response:
    store = request.app[LINE_STATE].richmenus
    users = request.query.getall("user", [])
    answer: dict[str, Any] = {
        "default": store.default,
        "byMenu": dict(Counter(store.links.values())),
        "aliases": dict(store.aliases),
        "menus": list(store.menus),
        "shown": {user: store.shown_to(user) for user in users},
        "links": {user: store.menu_of(user) for user in users},
    }
    if request.query.get("all") == "1":
        answer["links"] = dict(store.links)
    return web.json_response(answer)


async def get_stats(request: web.Request) -> web.Response:
    state, base = request.app[LINE_STATE], request.app[STATE_KEY]
    delivered = base.counters.snapshot("delivered").get("delivered", {"by_recipient": {}})
    histogram = Counter(delivered["by_recipient"].values())
    units = {
        name: {
            "delivered": sum(stats.delivered_by_day.values()),
            "uniqueOpeners": len(stats.first_open_day),
        }
        for name, stats in state.units.items()
    }
    return web.json_response(
        {
            "delivered": base.counters.total("delivered"),
            "recipients": len(delivered["by_recipient"]),
            "usersByMessageCount": {str(k): v for k, v in sorted(histogram.items())},
            "blockedSkipped": base.counters.total("blocked"),
            "consumption": state.consumption(),
            "units": units,
            "unitNamesThisMonth": len(state.unit_names()),
            "retryKeys": len(state.retry_keys),
            "followers": len(state.followers),
            "blocked": len(state.blocked),
        }
    )


def add_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("POST", CONTROL_PREFIX + "blocked", post_blocked)
    add("POST", CONTROL_PREFIX + "followers", post_followers)
    add("GET", CONTROL_PREFIX + "config", get_config)
    add("POST", CONTROL_PREFIX + "config", post_config)
    add("POST", CONTROL_PREFIX + "clock", post_clock)
    add("POST", CONTROL_PREFIX + "faults/next", post_next_faults)
    add("GET", CONTROL_PREFIX + "richmenu/links", get_links)
    add("GET", CONTROL_PREFIX + "stats", get_stats)
