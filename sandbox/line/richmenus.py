"""Rich menus, images, the default menu, per-user links, aliases and batch control.

A per-user link beats the default menu. A batch `link` operation moves every user linked to
`from` onto `to`, so a whole tab-menu set switches in one request.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import NOT_FOUND, LineApiError, invalid

MAX_MENUS = 1000
MAX_ALIASES = 1000
NO_IMAGE = "must upload richmenu image before applying it to user"
_CHUNK = 50_000  # users relinked between yields to the event loop


@dataclass(slots=True)
class BatchProgress:
    request_id: str
    operations: list[dict[str, Any]]
    accepted_at: float
    resume_key: str | None = None
    done_ops: int = 0
    phase: str = "ongoing"
    completed_at: float | None = None
    not_before: float = 0.0  # stays "ongoing" until this wall time (simulated duration)


@dataclass
class RichMenuStore:
    menus: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    default: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # userId -> richMenuId
    aliases: dict[str, str] = field(default_factory=dict)
    batches: dict[str, BatchProgress] = field(default_factory=dict)
    by_resume_key: dict[str, BatchProgress] = field(default_factory=dict)

    # --- menus -------------------------------------------------------------------------

    def create(self, menu: dict[str, Any]) -> str:
        if len(self.menus) >= MAX_MENUS:
            raise LineApiError(400, f"The number of rich menus has reached the limit ({MAX_MENUS})")
        menu_id = "richmenu-" + secrets.token_hex(16)
        self.menus[menu_id] = {"richMenuId": menu_id, **menu}
        return menu_id

    def get(self, menu_id: str) -> dict[str, Any]:
        menu = self.menus.get(menu_id)
        if menu is None:
            raise LineApiError(404, NOT_FOUND)
        return menu

    def delete(self, menu_id: str) -> None:
        self.get(menu_id)
        del self.menus[menu_id]
        self.images.pop(menu_id, None)
        if self.default == menu_id:
            self.default = None
        self.links = {user: m for user, m in self.links.items() if m != menu_id}

    def set_image(self, menu_id: str, content_type: str, data: bytes) -> None:
        self.get(menu_id)
        if menu_id in self.images:
            raise LineApiError(400, "An image has already been uploaded to the richmenu")
        self.images[menu_id] = (content_type, data)

    def usable(self, menu_id: str, *, status: int = 404) -> None:
        """A menu can be shown only once it exists and has its image."""
        if menu_id not in self.menus:
            raise LineApiError(status, NOT_FOUND if status == 404 else "richmenu not found")
        if menu_id not in self.images:
            raise LineApiError(400, NO_IMAGE)

    # --- default and per-user links -------------------------------------------------------

    def set_default(self, menu_id: str) -> None:
        self.usable(menu_id)
        self.default = menu_id

    def menu_of(self, user_id: str) -> str | None:
        """What LINE's "get rich menu ID of user" answers: the per-user link only."""
        return self.links.get(user_id)

    def shown_to(self, user_id: str) -> str | None:
        """What the user actually sees: the per-user link, else the default."""
        return self.links.get(user_id, self.default)

    def link(self, user_ids: Iterable[str], menu_id: str, *, status: int = 404) -> None:
        self.usable(menu_id, status=status)
        for user_id in user_ids:
            self.links[user_id] = menu_id

    def unlink(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self.links.pop(user_id, None)

    # --- aliases ---------------------------------------------------------------------------

    def create_alias(self, alias_id: str, menu_id: str) -> None:
        if alias_id in self.aliases:
            raise invalid("richMenuAliasId", "conflict richmenu alias id")
        if len(self.aliases) >= MAX_ALIASES:
            raise LineApiError(400, f"The number of aliases has reached the limit ({MAX_ALIASES})")
        self.usable(menu_id, status=400)
        self.aliases[alias_id] = menu_id

    def alias(self, alias_id: str) -> dict[str, str]:
        if alias_id not in self.aliases:
            raise LineApiError(404, NOT_FOUND)
        return {"richMenuAliasId": alias_id, "richMenuId": self.aliases[alias_id]}

    def update_alias(self, alias_id: str, menu_id: str) -> None:
        self.alias(alias_id)
        self.usable(menu_id, status=400)
        self.aliases[alias_id] = menu_id

    def delete_alias(self, alias_id: str) -> None:
        self.alias(alias_id)
        del self.aliases[alias_id]

    # --- batch control -------------------------------------------------------------------------

    def check_operations(self, operations: list[dict[str, Any]]) -> None:
        for index, op in enumerate(operations):
            for prop in ("from", "to"):
                menu_id = op.get(prop)
                if menu_id is not None and menu_id not in self.menus:
                    raise invalid(f"operations[{index}].{prop}", "richmenu not found")
            if op.get("to") is not None and op["to"] not in self.images:
                raise invalid(f"operations[{index}].to", NO_IMAGE)

    def final_menus(self, operations: list[dict[str, Any]]) -> dict[str, str | None]:
        """Where each linked menu ends after the operations run in order (None = unlinked)."""
        final: dict[str, str | None] = {}
        for start in set(self.links.values()):
            current: str | None = start
            for op in operations:
                if op["type"] == "unlinkAll":
                    current = None
                elif current is not None and op.get("from") == current:
                    current = op.get("to") if op["type"] == "link" else None
            final[start] = current
        return final

    async def run_batch(self, progress: BatchProgress, fail_after_ops: int | None) -> bool:
        """Apply the remaining operations; False when the simulated failure stopped it."""
        todo = progress.operations[progress.done_ops :]
        failing = fail_after_ops is not None and fail_after_ops < len(todo)
        if failing:
            todo = todo[: fail_after_ops or 0]
        final = self.final_menus(todo)
        for index, (user_id, menu_id) in enumerate(list(self.links.items())):
            target = final.get(menu_id, menu_id)
            if target is None:
                del self.links[user_id]
            elif target != menu_id:
                self.links[user_id] = target
            if index % _CHUNK == _CHUNK - 1:
                await asyncio.sleep(0)
        progress.done_ops += len(todo)
        return not failing
