"""`python -m notify menus …` and `python -m notify jma …` (hooked in by notify/__main__.py).

    menus sync [--json]          create/reuse/delete the city's rich menus in LINE (idempotent)
    menus status                 the mode in force and the last switch, as JSON
    jma ingest FILE… [--json]    feed telegram files (or Atom feeds) through the JMA intake

Without a Redis URL the switch a telegram starts runs in this process instead of a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from notify.cli_errors import run_command
from notify.errors import HubError
from notify.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m notify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="area", required=True)
    menus = sub.add_parser("menus", help="LINE rich menus and the mode").add_subparsers(
        dest="command", required=True
    )
    sync = menus.add_parser("sync", help="sync the configured rich menus to LINE")
    sync.add_argument("--json", action="store_true")
    menus.add_parser("status", help="mode in force and switch progress (JSON)")
    jma = sub.add_parser("jma", help="JMA telegrams").add_subparsers(dest="command", required=True)
    ingest = jma.add_parser("ingest", help="feed telegram / Atom feed files to the intake")
    ingest.add_argument("files", nargs="+", type=Path)
    ingest.add_argument("--json", action="store_true")
    return parser


@asynccontextmanager
async def _runtime(settings: Settings) -> AsyncIterator[Any]:
    from notify.city import load_city
    from notify.db import Database
    from notify.migrate import upgrade
    from notify.mode.runtime import ModeRuntime

    db = Database.from_settings(settings)
    redis = None
    if settings.redis_url:
        from arq import create_pool

        from notify.queue_redis import queue_redis_settings

        redis = await create_pool(queue_redis_settings(settings.redis_url))
    rt = ModeRuntime.build(settings, load_city(settings.city_config), db, redis)
    try:
        await upgrade(db)
        yield rt
    finally:
        await rt.close()
        if redis is not None:
            await redis.aclose()
        await db.close()


async def _sync(settings: Settings, as_json: bool) -> None:
    from notify.mode.sync import sync_menus

    async with _runtime(settings) as rt:
        report = await sync_menus(rt)
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    print(
        f"created {report.created or '-'}, reused {report.reused or '-'}, "
        f"deleted {len(report.deleted)} stale, aliases set {report.aliases or '-'}"
    )
    if report.kept_stale:
        print(
            f"kept {len(report.kept_stale)} stale menus until the batch window frees; "
            "run the sync again later"
        )
    for key, menu_id in report.menus.items():
        print(f"  {key:20} {menu_id}")


async def _status(settings: Settings) -> None:
    from notify.mode.status import mode_status

    async with _runtime(settings) as rt:
        status = await mode_status(rt)
    print(status.model_dump_json(indent=2))


async def _ingest(settings: Settings, files: list[Path], as_json: bool) -> None:
    from notify.mode.jma_feed import ingest
    from notify.mode.runner import run_switch

    async with _runtime(settings) as rt:
        for path in files:
            try:
                results = await ingest(rt, path.read_bytes(), source="file")
            except HubError as exc:
                print(f"{path}: refused: {exc.message}", file=sys.stderr)
                continue
            except OSError as exc:  # the other files still go in
                print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
                continue
            for result in results:
                if rt.redis is None and result.switch_id and not result.duplicate:
                    await run_switch(rt, result.switch_id)
                if as_json:
                    print(
                        json.dumps(
                            {"file": str(path), **dataclasses.asdict(result)}, ensure_ascii=False
                        )
                    )
                else:
                    print(f"{path}: {result.action} → {result.outcome}: {result.reason_ja}")


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: _run(args, settings))


def _run(args: argparse.Namespace, settings: Settings | None) -> None:
    settings = settings or Settings.from_env(os.environ)
    if args.area == "menus" and args.command == "sync":
        asyncio.run(_sync(settings, args.json))
    elif args.area == "menus":
        asyncio.run(_status(settings))
    else:
        asyncio.run(_ingest(settings, args.files, args.json))


if __name__ == "__main__":
    sys.exit(main())
