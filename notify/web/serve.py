"""`serve(app, ...)`: aiohttp's `run_app`, stopping once however many signals arrive.

A terminal's Ctrl-C and `timeout` signal the whole process group, and `make` forwards the
signal to its child as well, so the server often gets two. aiohttp's own handlers raise
GracefulExit on every one; a second one in the middle of the graceful exit cancelled the
shutdown itself (closing database connections, for one). Here the first SIGINT or SIGTERM
starts the graceful exit and later ones are only logged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit

log = logging.getLogger("notify.web")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(app: web.Application, **run_app_options: Any) -> None:
    app.on_startup.append(_stop_once_on_signals)
    try:
        web.run_app(app, handle_signals=False, **run_app_options)
    finally:
        # The caller still stops what it started (child processes, a private Redis).
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)


async def _stop_once_on_signals(app: web.Application) -> None:
    loop = asyncio.get_running_loop()

    def again() -> None:
        log.warning("already stopping; SIGKILL stops at once, without cleaning up")

    def first() -> None:
        for stop_signal in STOP_SIGNALS:
            loop.add_signal_handler(stop_signal, again)
        raise GracefulExit  # out of run_app's loop, as aiohttp's own handler does

    for stop_signal in STOP_SIGNALS:
        loop.add_signal_handler(stop_signal, first)
