"""The live reach estimate for the compose form (the page's script posts the form here)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notify.console.compose_form import ComposeForm, form_from_post
from notify.console.i18n import CHANNEL_LABELS, label, pick
from notify.console.pages import Viewer, console_page
from notify.db import utcnow
from notify.errors import HubError
from notify.models import Role
from notify.web.keys import CITY, DB
from segments.reach import Reach, estimate_reach

routes = web.RouteTableDef()


async def reach_for(request: web.Request, form: ComposeForm) -> Reach:
    city = request.app[CITY]
    rule = form.rule(city)
    async with request.app[DB].sessionmaker() as session:
        return await estimate_reach(
            session,
            rule,
            send_date=form.send_at(city) or utcnow(),
            city=city,
            channels=form.channels,
            policy="preferred" if form.channel_policy == "preferred" else "all",
            topic=form.topic or None,
            emergency=form.priority == "emergency",
        )


def reach_json(reach: Reach, viewer: Viewer, request: web.Request) -> dict[str, Any]:
    city = request.app[CITY]

    def ward_name(code: str) -> str:
        ward = city.ward(code)
        if ward is None:
            return viewer.t("区不明", "Unknown ward")
        return ward.en if viewer.lang == "en" else ward.ja

    return {
        "total": reach.total,
        "reachable": reach.reachable,
        "by_channel": [
            {"channel": ch, "label": label(CHANNEL_LABELS, ch, viewer.lang), "count": n}
            for ch, n in reach.by_channel.items()
        ],
        "by_ward": [{"ward": ward_name(c), "count": n} for c, n in reach.by_ward.items()],
    }


@routes.post("/console/reach")
@console_page(Role.PR, Role.DISASTER)
async def live_reach(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        reach = await reach_for(request, form_from_post(viewer.form, request.app[CITY]))
    except HubError as exc:
        return web.json_response(
            {"error": pick(exc.message, viewer.lang), "fields": exc.fields}, status=exc.status
        )
    return web.json_response(reach_json(reach, viewer, request))
