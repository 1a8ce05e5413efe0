"""Approvers: the queue of submitted broadcasts, each with its previews and the two answers."""

from __future__ import annotations

from aiohttp import web

from notify.broadcasts.lifecycle import REVIEWERS
from notify.console.broadcast_views import audience_text, list_broadcasts, sample_ward
from notify.console.pages import Viewer, console_page
from notify.console.permissions import allowed_actions, review_refusal
from notify.console.previews import build_previews
from notify.web.keys import CITY, DB, SETTINGS

routes = web.RouteTableDef()


@routes.get("/console/approvals")
@console_page(*REVIEWERS)
async def approval_queue(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    city = request.app[CITY]
    rows, names, total = await list_broadcasts(request.app[DB], statuses=("submitted",))
    items = []
    for b in reversed(rows):  # oldest request first
        ja_only = {k: v for k, v in (b.content or {}).items() if k == "ja"}
        items.append(
            {
                "b": b,
                "audience": audience_text(b.segment, city),
                "author": names.get(b.created_by or 0, "—"),
                "actions": allowed_actions(viewer.principal, b),
                "refusal": review_refusal(viewer.principal, b),
                "previews": build_previews(
                    ja_only,
                    channels=b.channels,
                    city=city,
                    title=b.title,
                    priority=b.priority,
                    send_at=b.send_at,
                    ward_code=sample_ward(b.segment, city),
                    broadcast_id=b.id,
                ),
            }
        )
    return viewer.page(
        request,
        "approvals.html",
        items=items,
        total=total,
        sender_name=city.city.name.en if viewer.lang == "en" else city.city.name.ja,
        mail_from=request.app[SETTINGS].mail_from,
    )
