"""Command line: `python -m notify <command>`.

up [--demo]          start the hub (private Redis if none, sandbox + demo data with --demo)
migrate              upgrade the database schema
create-staff LOGIN   create a staff account (prints an API token)
menus sync|status    LINE rich menus and the city's mode (notify/mode/cli.py)
jma ingest FILE…     feed JMA telegram files through the disaster-mode intake
bounce [FILE]        read one email bounce / complaint (stdin without FILE; a Postfix pipe)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from notify.cli_errors import run_command
from notify.settings import Settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("menus", "jma"):
        from notify.mode import cli as mode_cli

        return mode_cli.main(argv)
    parser = argparse.ArgumentParser(
        prog="python -m notify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start server + worker (+ sandbox and demo data with --demo)")
    up.add_argument("--demo", action="store_true", help="sandbox providers and a demo city")
    up.add_argument("--residents", type=int, default=10_000, help="demo city size")
    up.add_argument("--port", type=int, default=None)
    up.add_argument("--workers", type=int, default=1)
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    staff = sub.add_parser("create-staff", help="create a staff account")
    staff.add_argument("login")
    staff.add_argument("--name", default=None)
    staff.add_argument(
        "--roles", required=True, help="comma separated: pr,approver,disaster,analyst,admin"
    )
    staff.add_argument("--password", action="store_true", help="ask for a console password")
    bounce = sub.add_parser("bounce", help="read one bounce / complaint message (FILE or stdin)")
    bounce.add_argument("file", nargs="?", type=Path)
    args = parser.parse_args(argv)

    return run_command(lambda: _run(args))


def _run(args: argparse.Namespace) -> int | None:
    settings = Settings.from_env(os.environ)
    if args.command == "up":
        from notify.launcher import run_hub

        overrides: dict[str, object] = {"demo": args.demo or settings.demo}
        if args.port:
            overrides["port"] = args.port
            overrides["public_url"] = f"http://127.0.0.1:{args.port}"
        run_hub(
            settings.model_copy(update=overrides), residents=args.residents, workers=args.workers
        )
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is up to date")
    elif args.command == "create-staff":
        password = getpass.getpass("password: ") if args.password else None
        token = asyncio.run(
            _create_staff(
                settings, args.login, args.name or args.login, args.roles.split(","), password
            )
        )
        print(f"created {args.login}; API token (shown once): {token}")
    elif args.command == "bounce":
        from notify.registry.bounces import run_cli

        return run_cli(settings, args.file)
    return None


async def _migrate(settings: Settings) -> None:
    from notify.db import Database
    from notify.migrate import upgrade

    db = Database.from_settings(settings)
    try:
        await upgrade(db)
    finally:
        await db.close()


async def _create_staff(
    settings: Settings, login: str, name: str, roles: list[str], password: str | None
) -> str:
    from notify.db import Database
    from notify.migrate import upgrade
    from notify.staff import create_staff, issue_token

    db = Database.from_settings(settings)
    try:
        await upgrade(db)
        async with db.transaction() as session:
            user = await create_staff(session, login, name, roles, password)
            return await issue_token(session, user)
    finally:
        await db.close()


if __name__ == "__main__":
    sys.exit(main())
