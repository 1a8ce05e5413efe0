"""PR staff: the compose page (new draft and editing a draft) with reach and previews."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notify.console.compose_form import ComposeForm, form_from_post
from notify.console.pages import Viewer
from notify.console.previews import ChannelPreview, build_previews
from notify.console.reach import reach_for
from notify.errors import HubError, InvalidInput
from notify.models import Role
from notify.web.keys import CITY, SETTINGS
from segments.reach import Reach


def sample_ward(form: ComposeForm) -> str | None:
    return form.segment.wards[0] if form.segment.wards else None


async def compose_view(
    request: web.Request,
    viewer: Viewer,
    form: ComposeForm,
    *,
    form_action: str,
    page_title: str,
    with_previews: bool,
    error: HubError | None = None,
    can_save: bool = True,
    status: int = 200,
    version: int | None = None,
) -> web.Response:
    city = request.app[CITY]
    reach: Reach | None = None
    previews: list[ChannelPreview] = []
    field_errors: dict[str, str] = dict(error.fields) if error else {}
    try:
        reach = await reach_for(request, form)
    except InvalidInput as exc:
        field_errors.update(exc.fields)
        error = error or exc
    if with_previews:
        try:
            previews = build_previews(
                form.content(),
                channels=form.channels,
                city=city,
                title=form.title,
                priority=form.priority,
                send_at=form.send_at(city),
                ward_code=sample_ward(form),
            )
        except HubError as exc:
            error = error or exc
            field_errors.update(exc.fields)
    context: dict[str, Any] = {
        "form": form,
        "form_action": form_action,
        "page_title": page_title,
        "reach": reach,
        "previews": previews,
        "sender_name": city.city.name.en if viewer.lang == "en" else city.city.name.ja,
        "mail_from": request.app[SETTINGS].mail_from,
        "can_emergency": viewer.has_role(Role.DISASTER),
        "can_save": can_save,
        "version": version,
        "other_languages_used": any(
            value
            for lang, values in form.texts.items()
            if lang != "ja"
            for value in values.values()
        ),
        "error": error.message if error else None,
        "field_errors": field_errors,
    }
    return viewer.page(request, "compose.html", status=status, **context)


def posted_form(request: web.Request, viewer: Viewer) -> ComposeForm:
    return form_from_post(viewer.form, request.app[CITY])
