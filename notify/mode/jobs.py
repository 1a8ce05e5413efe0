"""arq jobs of the mode area (collected by worker.py).

    mode_run_switch(switch_id)   run (or resume) one switch's steps; re-queues itself while it
                                 waits for LINE (batch progress, the 3/hour batch window)
    mode_sync_menus              the menu sync, for `POST /api/mode/menus/sync`

`startup` adds `ctx["mode"]`: a ModeRuntime with the LINE admin client and the FCM channel.
"""

from __future__ import annotations

import logging
from typing import Any

from notify.errors import ConfigError
from notify.mode.runner import run_switch
from notify.mode.runtime import ModeRuntime
from notify.mode.state import current_mode
from notify.mode.sync import sync_menus

log = logging.getLogger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    rt = ModeRuntime.build(ctx["settings"], ctx["city"], ctx["db"], ctx.get("redis"))
    ctx["mode"] = rt
    # The first switch after a deploy must be as quick as any: read the menus, build the SDK
    # clients (no network) and open a database connection now, not when disaster strikes.
    try:
        rt.catalog()
    except ConfigError as exc:  # the worker still serves every other area
        log.error("rich menus unusable: %s", exc.message)
    if rt.line is not None:
        await rt.line.messaging()
    await current_mode(rt.db)


async def shutdown(ctx: dict[str, Any]) -> None:
    rt = ctx.pop("mode", None)
    if isinstance(rt, ModeRuntime):
        await rt.close()


async def mode_run_switch(ctx: dict[str, Any], switch_id: int) -> str:
    return await run_switch(ctx["mode"], switch_id)


async def mode_sync_menus(ctx: dict[str, Any]) -> dict[str, Any]:
    return (await sync_menus(ctx["mode"])).as_dict()


FUNCTIONS: list[Any] = [mode_run_switch, mode_sync_menus]
CRON_JOBS: list[Any] = []
