"""LINE rich menu operations and insight reads (the disaster-mode switch and statistics).

A per-user link beats the default menu, so switching the default alone does not move users
with a link: use `link_rich_menu` (bulk, 500 a request) or `rich_menu_batch`, whose `link`
operation moves every user on menu `from` to menu `to` in one request (3 requests/hour).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from linebot.v3 import messaging as line

from notify.errors import ChannelError, PermanentChannelError

from .line_sdk import LineSdk, sdk_model

BULK_USERS = 500


@dataclass(frozen=True, slots=True)
class UnitStatistics:
    """Per custom aggregation unit; LINE answers None for values under 20 users."""

    unique_impressions: int | None
    unique_clicks: int | None
    impressions: int | None  # of the first bubble


@dataclass(frozen=True, slots=True)
class FollowerStatistics:
    status: str  # ready / unready / out_of_service
    followers: int | None
    targeted_reaches: int | None
    blocks: int | None


@dataclass(frozen=True, slots=True)
class BatchStatus:
    phase: str  # ongoing / succeeded / failed
    accepted_time: str
    completed_time: str | None


def _chunks(user_ids: Sequence[str]) -> list[list[str]]:
    return [list(user_ids[i : i + BULK_USERS]) for i in range(0, len(user_ids), BULK_USERS)]


def _not_found(error: ChannelError) -> bool:
    return isinstance(error, PermanentChannelError) and error.provider_code == "http_404"


class LineAdmin(LineSdk):
    # --- rich menus -------------------------------------------------------------------------

    async def create_rich_menu(
        self, menu: Mapping[str, Any], image: bytes, content_type: str = "image/png"
    ) -> str:
        """Create a menu and upload its image (LINE cannot replace one later); returns its id.
        If the upload fails the half-made menu is deleted again."""
        messaging = await self.messaging()
        created = await self._call(
            messaging.create_rich_menu, sdk_model(line.RichMenuRequest, menu)
        )
        menu_id = str(created.rich_menu_id)
        blob = await self.blob()
        try:
            await self._call(
                blob.set_rich_menu_image, menu_id, image, _headers={"Content-Type": content_type}
            )
        except ChannelError:
            await self._call(messaging.delete_rich_menu, menu_id)
            raise
        return menu_id

    async def rich_menu_image(self, menu_id: str) -> bytes:
        return bytes(await self._call((await self.blob()).get_rich_menu_image, menu_id))

    async def list_rich_menus(self) -> list[dict[str, Any]]:
        answer = await self._call((await self.messaging()).get_rich_menu_list)
        return [menu.to_dict() for menu in answer.richmenus]

    async def delete_rich_menu(self, menu_id: str) -> None:
        await self._call((await self.messaging()).delete_rich_menu, menu_id)

    async def set_default_rich_menu(self, menu_id: str) -> None:
        await self._call((await self.messaging()).set_default_rich_menu, menu_id)

    async def default_rich_menu_id(self) -> str | None:
        try:
            answer = await self._call((await self.messaging()).get_default_rich_menu_id)
        except ChannelError as error:
            if _not_found(error):
                return None
            raise
        return str(answer.rich_menu_id)

    async def cancel_default_rich_menu(self) -> None:
        await self._call((await self.messaging()).cancel_default_rich_menu)

    async def link_rich_menu(self, menu_id: str, user_ids: Sequence[str]) -> None:
        """Per-user links, 500 users a request (LINE answers 202)."""
        messaging = await self.messaging()
        for chunk in _chunks(user_ids):
            request = sdk_model(
                line.RichMenuBulkLinkRequest, {"richMenuId": menu_id, "userIds": chunk}
            )
            await self._call(messaging.link_rich_menu_id_to_users, request)

    async def unlink_rich_menus(self, user_ids: Sequence[str]) -> None:
        messaging = await self.messaging()
        for chunk in _chunks(user_ids):
            request = sdk_model(line.RichMenuBulkUnlinkRequest, {"userIds": chunk})
            await self._call(messaging.unlink_rich_menu_id_from_users, request)

    async def rich_menu_of_user(self, user_id: str) -> str | None:
        """The user's per-user link (not the default menu), or None."""
        try:
            answer = await self._call((await self.messaging()).get_rich_menu_id_of_user, user_id)
        except ChannelError as error:
            if _not_found(error):
                return None
            raise
        return str(answer.rich_menu_id)

    async def create_rich_menu_alias(self, alias_id: str, menu_id: str) -> None:
        body = {"richMenuAliasId": alias_id, "richMenuId": menu_id}
        request = sdk_model(line.CreateRichMenuAliasRequest, body)
        await self._call((await self.messaging()).create_rich_menu_alias, request)

    async def update_rich_menu_alias(self, alias_id: str, menu_id: str) -> None:
        request = sdk_model(line.UpdateRichMenuAliasRequest, {"richMenuId": menu_id})
        await self._call((await self.messaging()).update_rich_menu_alias, alias_id, request)

    async def delete_rich_menu_alias(self, alias_id: str) -> None:
        await self._call((await self.messaging()).delete_rich_menu_alias, alias_id)

    async def rich_menu_aliases(self) -> dict[str, str]:
        answer = await self._call((await self.messaging()).get_rich_menu_alias_list)
        return {alias.rich_menu_alias_id: alias.rich_menu_id for alias in answer.aliases}

    async def rich_menu_batch(
        self, operations: Sequence[Mapping[str, Any]], resume_request_key: str | None = None
    ) -> str:
        """Start a batch of link / unlink / unlinkAll operations; returns its request id, for
        `rich_menu_batch_progress`. Resending a failed batch with the same
        `resume_request_key` redoes only what did not run."""
        body: dict[str, Any] = {"operations": [dict(op) for op in operations]}
        if resume_request_key:
            body["resumeRequestKey"] = resume_request_key
        request = sdk_model(line.RichMenuBatchRequest, body)
        messaging = await self.messaging()
        response = await self._call(messaging.rich_menu_batch_with_http_info, request)
        return str(response.headers.get("x-line-request-id", ""))

    async def validate_rich_menu_batch(self, operations: Sequence[Mapping[str, Any]]) -> None:
        body = {"operations": [dict(op) for op in operations]}
        request = sdk_model(line.RichMenuBatchRequest, body)
        await self._call((await self.messaging()).validate_rich_menu_batch_request, request)

    async def rich_menu_batch_progress(self, request_id: str) -> BatchStatus:
        messaging = await self.messaging()
        answer = await self._call(messaging.get_rich_menu_batch_progress, request_id)
        phase = answer.phase.value if hasattr(answer.phase, "value") else answer.phase
        completed = answer.completed_time
        return BatchStatus(
            phase=str(phase),
            accepted_time=answer.accepted_time.isoformat(),
            completed_time=completed.isoformat() if completed else None,
        )

    # --- insight ------------------------------------------------------------------------------

    async def aggregation_unit_statistics(
        self, unit: str, start: date, end: date
    ) -> UnitStatistics:
        insight = await self.insight()
        answer = await self._call(
            insight.get_statistics_per_unit, unit, start.strftime("%Y%m%d"), end.strftime("%Y%m%d")
        )
        first = answer.messages[0] if answer.messages else None
        return UnitStatistics(
            unique_impressions=answer.overview.unique_impression,
            unique_clicks=answer.overview.unique_click,
            impressions=first.impression if first else None,
        )

    async def aggregation_unit_usage(self) -> int:
        """Distinct custom aggregation unit names used this month (LINE caps them at 1,000)."""
        answer = await self._call((await self.messaging()).get_aggregation_unit_usage)
        return int(answer.num_of_custom_aggregation_units)

    async def aggregation_unit_names(self) -> list[str]:
        messaging = await self.messaging()
        names: list[str] = []
        start: str | None = None
        while True:
            page = await self._call(
                messaging.get_aggregation_unit_name_list, limit="100", start=start
            )
            names.extend(page.custom_aggregation_units)
            if not page.next:
                return names
            start = page.next

    async def follower_statistics(self, day: date | None = None) -> FollowerStatistics:
        when = day.strftime("%Y%m%d") if day else None
        answer = await self._call((await self.insight()).get_number_of_followers, var_date=when)
        return FollowerStatistics(
            status=str(answer.status),
            followers=answer.followers,
            targeted_reaches=answer.targeted_reaches,
            blocks=answer.blocks,
        )
