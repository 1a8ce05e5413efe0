"""`python -m notify up`: start every part of the hub and stop them together.

Parts: a private Redis when REDIS_URL is not set; in demo mode the provider sandbox (LINE, FCM,
SMTP simulators in their own process) and demo data; the arq worker(s) as child processes; the
web server in this process. The database is migrated first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from notify.settings import REPO_ROOT, Settings
from notify.supervisor import Supervisor, stop_process

log = logging.getLogger("notify.launcher")

DEMO_STAFF = (
    # login, name, roles
    ("pr", "広報 花子 (PR)", ["pr"]),
    ("pr2", "広報 次郎 (PR)", ["pr"]),
    ("approver", "承認 一郎 (Approver)", ["approver"]),
    ("disaster", "防災 三郎 (Disaster)", ["disaster"]),
    ("analyst", "分析 桜 (Analyst)", ["analyst"]),
    ("admin", "管理 者 (Admin)", ["admin"]),
)
DEMO_PASSWORD = "demo-password"  # demo mode only; printed in the banner


def run_hub(settings: Settings, *, residents: int = 10_000, workers: int = 1) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if not settings.redis_url:
            from notify.embedded_redis import EmbeddedRedis

            redis = EmbeddedRedis(settings.data_dir / "redis")
            settings = settings.model_copy(update={"redis_url": redis.start()})
            stack.callback(redis.stop)
            log.info("started a private Redis at %s", settings.redis_url)
        if settings.demo:
            settings = _start_sandbox(settings, stack)
        settings = settings.model_copy(update={"secret_key": settings.resolved_secret()})
        demo_logins = asyncio.run(_prepare(settings, residents if settings.demo else 0))
        if settings.demo:
            from notify.mode import cli as mode_cli

            mode_cli.main(["menus", "sync"], settings)  # the demo's LINE gets the city's menus
        supervisor = Supervisor()
        stack.callback(supervisor.stop)
        for index in range(workers):
            log_path = settings.data_dir / f"worker-{index}.log"
            argv = [sys.executable, str(REPO_ROOT / "worker.py")]
            supervisor.add(f"worker-{index}", partial(_start_child, argv, settings, log_path))
        _print_banner(settings, demo_logins)
        from notify.web.serve import serve
        from server import create_app

        app = create_app(settings)
        if settings.demo:
            from notify import demo_app

            demo_app.attach(app, settings)  # the demo's phones open some of the pushes
        serve(app, host=settings.host, port=settings.port, print=None)


def _start_child(argv: list[str], settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("ab") as log_file:  # the child keeps its own copy
        return subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )


def _start_sandbox(settings: Settings, stack: ExitStack) -> Settings:
    """Run `python -m sandbox` and point every provider setting at it."""
    workdir = settings.data_dir / "sandbox"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        # Simulated mail readers open ~40 % of the demo's mails and click ~30 % of those, so
        # email opens and clicks are real requests to the hub (LINE opens: the LINE sandbox).
        [
            sys.executable,
            "-m",
            "sandbox",
            "--work-dir",
            str(workdir),
            "--mail-readers",
            "0.4",
            "0.3",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(workdir / "sandbox.log").open("ab"),
        cwd=REPO_ROOT,
    )
    stack.callback(stop_process, proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the sandbox did not start; see {workdir / 'sandbox.log'}")
    info: dict[str, Any] = json.loads(line)
    log.info("provider sandbox: %s", info)
    return settings.model_copy(update=_settings_from_sandbox(info))


def _settings_from_sandbox(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "line_api_url": info["line"]["url"],
        "line_data_url": info["line"]["url"],
        "line_channel_access_token": info["line"]["access_token"],
        # The sandbox never calls our webhook; residents in the demo are made by the demo data.
        "line_channel_secret": "sandbox-line-channel-secret",
        # LIFF form tokens: issued by the sandbox's LINE Login (`POST /_sandbox/login/tokens`).
        "line_login_api_url": info["line"]["url"],
        "line_login_channel_id": info["line"].get("login_channel_id", ""),
        "fcm_api_url": info["fcm"]["url"],
        "fcm_project_id": info["fcm"]["project_id"],
        "fcm_credentials_file": Path(info["fcm"]["credentials_file"]),
        "smtp_host": info["smtp"]["host"],
        "smtp_port": int(info["smtp"]["port"]),
        "smtp_tls": "none",
    }


async def _prepare(settings: Settings, residents: int) -> list[tuple[str, str]]:
    """Migrate; in demo mode create staff accounts and a synthetic city (once)."""
    from sqlalchemy import func, select

    from notify.city import load_city
    from notify.db import Database
    from notify.migrate import upgrade
    from notify.models import Resident, StaffUser
    from notify.staff import create_staff

    db = Database.from_settings(settings)
    logins: list[tuple[str, str]] = []
    try:
        await upgrade(db)
        if not settings.demo:
            return logins
        async with db.transaction() as session:
            if not await session.scalar(select(func.count()).select_from(StaffUser)):
                for login, name, roles in DEMO_STAFF:
                    await create_staff(session, login, name, roles, DEMO_PASSWORD)
        logins = [(login, name) for login, name, _ in DEMO_STAFF]
        async with db.sessionmaker() as session:
            have = await session.scalar(select(func.count()).select_from(Resident))
        if not have and residents:
            from notify.demo_broadcasts import send_demo_broadcasts
            from notify.synthetic import load_demo_city

            city = load_city(settings.city_config)
            await load_demo_city(db, city, residents=residents)
            # Sent by the worker once it starts: the analyst's pages then have numbers.
            await send_demo_broadcasts(settings, db, city)
    finally:
        await db.close()
    return logins


def _print_banner(settings: Settings, logins: list[tuple[str, str]]) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "=" * 72,
        f"  市民通知ハブ / Citizen notification hub: {url}/",
        f"  staff console:  {url}/console/   API: {url}/api/openapi.json",
        f"  database: {settings.effective_database_url}",
        f"  redis:    {settings.redis_url}",
    ]
    if logins:
        lines.append(f"  demo staff (password '{DEMO_PASSWORD}'):")
        lines += [f"    {login:<9} {name}" for login, name in logins]
    if settings.demo and settings.line_login_channel_id:
        lines += [
            "  LIFF form (/api/liff/profile) with a sandbox LINE Login token:",
            f"    POST {settings.line_login_api_url}/_sandbox/login/tokens",
            f'    {{"userId": "U<32 hex>", "channelId": "{settings.line_login_channel_id}"}}',
        ]
    lines += ["  Ctrl-C stops everything.", "=" * 72, ""]
    print("\n".join(lines), flush=True)
