"""The mode in force (one `mode_state` row; none yet = normal since the hub started)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import Database
from notify.mode.menus import Mode
from notify.mode.tables import ModeState

STATE_ID = 1


async def current_state(db: Database) -> ModeState | None:
    async with db.sessionmaker() as session:
        return await session.get(ModeState, STATE_ID)


async def current_mode(db: Database) -> Mode:
    state = await current_state(db)
    return "disaster" if state is not None and state.mode == "disaster" else "normal"


async def locked_state(session: AsyncSession) -> ModeState | None:
    """The state row, locked for the rest of the transaction (PostgreSQL; SQLite serialises
    writers anyway)."""
    return await session.get(ModeState, STATE_ID, with_for_update=True)
