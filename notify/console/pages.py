"""What every console page shares: who is looking, in which language, and the role gate.

    @console_page(Role.APPROVER)
    async def approvals(request: web.Request, viewer: Viewer) -> web.StreamResponse: ...

Unsigned visitors are sent to the sign-in page; a signed-in user without the role gets a 403
page; every POST must carry the session's CSRF token. Errors from the core (`HubError`) are
shown as a page in the reader's language with the matching status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from notify.console.auth import active_staff, principal_for
from notify.console.csrf import CSRF_FIELD, SAFE_METHODS, check_form
from notify.console.i18n import LANG_COOKIE, Lang, parse_lang
from notify.console.render import render
from notify.console.sessions import ConsoleSession, load_session
from notify.errors import Forbidden, HubError
from notify.mode.state import current_mode
from notify.models import Role, StaffUser
from notify.web.auth import Principal
from notify.web.errors import refuse_nul
from notify.web.keys import CITY, DB

NAV: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/console", "ホーム", "Home", ()),
    ("/console/broadcasts", "配信一覧", "Broadcasts", (Role.PR, Role.APPROVER)),
    ("/console/broadcasts/new", "新規作成", "Compose", (Role.PR,)),
    ("/console/approvals", "承認待ち", "Approvals", (Role.APPROVER,)),
    ("/console/mode", "災害モード", "Disaster mode", (Role.DISASTER,)),
    ("/console/stats", "配信統計", "Statistics", (Role.ANALYST,)),
)

# Messages a redirect may ask a page to show (`?msg=key`): a fixed list, never echoed input.
NOTICES: dict[str, tuple[str, str]] = {
    "signed_in": ("ログインしました。", "Signed in."),
    "saved": ("保存しました。", "Saved."),
    "submitted": ("承認依頼を出しました。", "Submitted for approval."),
    "approved": ("承認しました。", "Approved."),
    "rejected": ("差し戻しました。", "Sent back to the author."),
    "scheduled": ("配信を予約しました。", "Scheduled."),
    "rescheduled": ("配信日時を変更しました。", "Rescheduled."),
    "cancelled": ("配信を取り消しました。", "Cancelled."),
    "test_sent": ("テスト配信を送りました。", "Test message sent."),
    "mode_switched": ("モードを切り替えました。", "Mode switched."),
    "sync_queued": (
        "リッチメニューの同期を始めました。",
        "Rich menu sync started.",
    ),
    "dismissed": ("提案を見送りました。", "Proposal dismissed."),
    "paused": ("配信を一時停止しました。", "Paused."),
    "resumed": ("配信を再開しました。", "Resumed."),
}


@dataclass(slots=True)
class Viewer:
    staff: StaffUser
    session: ConsoleSession
    lang: Lang
    principal: Principal
    form: MultiDictProxy[str | bytes | Any] | None = None
    city_mode: str = "normal"
    _extra: dict[str, Any] = field(default_factory=dict)

    def has_role(self, *roles: str) -> bool:
        return self.principal.has_any_role(roles)

    def t(self, ja: str, en: str) -> str:
        return en if self.lang == "en" else ja

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def version(self) -> int:
        """The form's `version` (the one the page was drawn from); anything but a plausible
        number is 0, which no broadcast has: the edit is refused as stale, not crashed on."""
        raw = self.field("version")
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0

    def fields(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [v.strip() for v in self.form.getall(name, []) if isinstance(v, str) and v.strip()]

    def context(self, request: web.Request, **extra: Any) -> dict[str, Any]:
        notice = NOTICES.get(request.query.get("msg", ""))
        nav = [
            (href, ja, en)
            for href, ja, en, roles in NAV
            if not roles or self.principal.has_any_role(roles)
        ]
        # The menu item for this page: the longest link the path starts with.
        current = max(
            (
                href
                for href, _, _ in nav
                if request.path == href
                or (href != "/console" and request.path.startswith(href + "/"))
            ),
            key=len,
            default=None,
        )
        return {
            "lang": self.lang,
            "me": self.staff,
            "csrf_token": self.session.csrf_token,
            "city": request.app[CITY],
            "nav": nav,
            "current_nav": current,
            "path": request.path,
            "path_qs": request.path_qs,
            "notice": None if notice is None else (notice[1] if self.lang == "en" else notice[0]),
            "mode_banner": self.t(
                "災害モード中です。LINEのメニューとアプリは災害用に切り替わっています。",
                "DISASTER MODE is in force: LINE menus and the app show disaster content.",
            )
            if self.city_mode == "disaster"
            else None,
            "error": None,
            "field_errors": {},
            **extra,
        }

    def page(
        self, request: web.Request, template: str, *, status: int = 200, **extra: Any
    ) -> web.Response:
        return render(request, template, self.context(request, **extra), status=status)


PageHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def console_page(*roles: str) -> Callable[[PageHandler], Callable[[web.Request], Any]]:
    def decorate(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            lang = parse_lang(request.cookies.get(LANG_COOKIE))
            state = await load_session(request)
            staff = None if state is None else await active_staff(request, state.staff_id)
            if state is None or staff is None:
                target = request.path_qs if request.method in SAFE_METHODS else "/console"
                return see_other(f"/console/login?next={quote(target)}")
            viewer = Viewer(staff, state, lang, principal_for(staff))
            viewer.city_mode = await current_mode(request.app[DB])
            try:
                if not viewer.principal.has_any_role(roles):
                    raise Forbidden(
                        "この画面を使う権限がありません / your roles do not allow this page"
                    )
                if request.method not in SAFE_METHODS:
                    viewer.form = await request.post()
                    check_form(request, _str(viewer.form.get(CSRF_FIELD)), state.csrf_token)
                    refuse_nul(viewer.form, "form")
                return await handler(request, viewer)
            except HubError as exc:
                return error_page(request, viewer, exc)

        handle.__name__ = handler.__name__
        return handle

    return decorate


def error_page(request: web.Request, viewer: Viewer, exc: HubError) -> web.Response:
    return viewer.page(
        request,
        "error.html",
        status=exc.status,
        error=exc.message,
        error_code=exc.code,
        field_errors=exc.fields,
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def back_to(path: str, msg: str) -> web.Response:
    """Post/redirect/get: go to `path` showing the fixed notice `msg`."""
    return see_other(f"{path}?msg={msg}")
