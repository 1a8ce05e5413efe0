"""`python -m bench mode --residents 100000 --json`: the disaster-mode switch, end to end.

Set-up (not timed): a scratch PostgreSQL database `bench_mode` (dropped, created, migrated;
or `--database-url`), a synthetic city of `--residents`, the LINE sandbox in its own process
with LINE's real rate limits (richmenu/batch 3 an hour, 2,000 requests/s otherwise), the FCM
sandbox, the city's rich menus synced, a tenth of the residents (LINE users) given a per-user
link to the normal menu, and the hub's server and worker as their own processes
(`python server.py`, `python worker.py`, default settings).

Timed, from the `POST /api/mode/switch` call, watching the LINE sandbox:
- `default_switch_s`: until the default rich menu is the disaster menu (target < 1 s);
- `relink_done_s`: until every per-user link is on the disaster menu;
and the same back to normal (`default_restore_s`, `restore_done_s`).

What LINE's limits allow: one richmenu/batch request (of 3 an hour) moves every per-user link
whatever their number, so the floor is one request plus LINE's own processing time (the
sandbox's is `--batch-duration`, 0 by default; LINE documents none). Moving the same users
one by one would take `links / 500` bulk requests (≤ 2,000 requests/s) after reading each
LINE user's link (one request each): `bulk_floor_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from arq import create_pool
from sqlalchemy import select

from bench._city import recreate_database
from notify.city import load_city
from notify.db import Database
from notify.migrate import upgrade
from notify.mode.runtime import ModeRuntime
from notify.mode.sync import sync_menus
from notify.models import Endpoint, EndpointStatus
from notify.queue_redis import queue_redis_settings
from notify.settings import REPO_ROOT, Settings
from notify.staff import create_staff, issue_token
from notify.synthetic import load_synthetic_city
from sandbox.fcm import FcmSandbox
from sandbox.line import SANDBOX_TOKEN
from sandbox.runner import DEFAULT_REFERENCE_DIR, register_service_account, write_service_account

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_mode"
FONT = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
LINE_OTHER_PER_S = 2000  # LINE: every endpoint without a stricter limit
BULK_USERS = 500
POLL_S = 0.005


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def line_process(batch_duration_s: float) -> AsyncIterator[str]:
    """The LINE sandbox as its own process, LINE's rate limits on; yields its URL."""
    command = [sys.executable, "-m", "sandbox.line", "--port", "0", "--log-size", "100"]
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the LINE sandbox did not start")
        url = str(json.loads(line)["url"])
        if batch_duration_s:
            async with aiohttp.ClientSession() as session:
                await session.post(
                    f"{url}/_sandbox/config", json={"batch_duration_s": batch_duration_s}
                )
        yield url
    finally:
        process.terminate()
        await process.wait()


@asynccontextmanager
async def hub_processes(settings: Settings, logs: Path) -> AsyncIterator[str]:
    """`python server.py` and `python worker.py` with these settings; yields the server URL."""
    env = {**os.environ, **settings.to_env()}
    started = []
    try:
        for name in ("server", "worker"):
            out = (logs / f"{name}.log").open("wb")
            started.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(REPO_ROOT / f"{name}.py"),
                    env=env,
                    cwd=REPO_ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        url = f"http://127.0.0.1:{settings.port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the hub did not start (see {logs})")
        assert settings.redis_url
        pool = await create_pool(queue_redis_settings(settings.redis_url))
        try:  # the worker is consuming once it answers a ping
            job = await pool.enqueue_job("worker_ping")
            assert job is not None
            await job.result(timeout=60)
        finally:
            await pool.aclose()
        yield url
    finally:
        for process in started:
            process.terminate()
        for process in started:
            await process.wait()


async def _links(session: aiohttp.ClientSession, line_url: str) -> dict[str, Any]:
    async with session.get(f"{line_url}/_sandbox/richmenu/links") as response:
        return dict(await response.json())


async def measure_switch(
    session: aiohttp.ClientSession,
    hub_url: str,
    line_url: str,
    headers: dict[str, str],
    mode: str,
    target_id: str,
    linked: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    async with session.post(
        f"{hub_url}/api/mode/switch",
        headers=headers,
        json={"mode": mode, "reason": f"ベンチマーク: {mode}"},
    ) as response:
        body = await response.text()
        if response.status != 202:
            raise RuntimeError(f"switch refused: {response.status} {body}")
    api_s = time.perf_counter() - started
    default_s = relink_s = None
    deadline = started + 600
    while time.perf_counter() < deadline:
        state = await _links(session, line_url)
        now = time.perf_counter() - started
        if default_s is None and state["default"] == target_id:
            default_s = now
        if (
            relink_s is None
            and state["byMenu"].get(target_id, 0) >= linked
            and (sum(state["byMenu"].values()) == state["byMenu"].get(target_id, 0))
        ):
            relink_s = now
        if default_s is not None and relink_s is not None:
            break
        await asyncio.sleep(POLL_S)
    if default_s is None or relink_s is None:
        raise RuntimeError(f"switch to {mode} did not finish within 600 s")
    for _ in range(6000):  # the hub's own record of the switch
        async with session.get(f"{hub_url}/api/mode", headers=headers) as response:
            status = await response.json()
        if status["switch"]["status"] == "done":
            break
        await asyncio.sleep(0.05)
    switch = status["switch"]
    requested = dt.datetime.fromisoformat(switch["requested_at"])
    steps = {
        name: round((dt.datetime.fromisoformat(step["at"]) - requested).total_seconds(), 3)
        for name, step in switch["steps"].items()
    }
    return {
        "steps_s": steps,
        "api_s": round(api_s, 4),
        "default_s": round(default_s, 4),
        "relink_s": round(relink_s, 4),
        "done_s": round(time.perf_counter() - started, 3),
        "strategy": switch["relink"]["strategy"],
        "batches": len(switch["relink"]["batches"]),
        "status": switch["status"],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url or DEFAULT_URL
    if args.fresh or args.database_url is None:
        await recreate_database(url)
    work = Path(tempfile.mkdtemp(prefix="bench-mode-"))
    async with AsyncExitStack() as stack:
        line_url = await stack.enter_async_context(line_process(args.batch_duration))
        fcm = FcmSandbox(DEFAULT_REFERENCE_DIR / "fcm" / "fcm.v1.json", project_id="bench-mode")
        await fcm.start()
        stack.push_async_callback(fcm.stop)
        account = write_service_account(work / "sa.json", fcm.token_uri, "bench-mode")
        register_service_account(fcm, account)
        port = _free_port()
        settings = Settings(
            data_dir=work,
            database_url=url,
            redis_url=args.redis_url,
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            secret_key="bench-mode-secret-key-0123456789",
            line_api_url=line_url,
            line_data_url=line_url,
            line_channel_access_token=SANDBOX_TOKEN,
            fcm_api_url=fcm.url,
            fcm_project_id="bench-mode",
            fcm_credentials_file=account.path,
            rich_menu_font=args.font,
            smtp_port=_free_port(),
            log_level="WARNING",
        )
        if args.poll is not None:
            settings = settings.model_copy(update={"mode_batch_poll_s": args.poll})
        redis = await create_pool(queue_redis_settings(args.redis_url))
        await redis.flushdb()
        await redis.aclose()
        db = Database(settings.effective_database_url)
        stack.push_async_callback(db.close)
        await upgrade(db)
        city = load_city(settings.city_config)
        loaded = await load_synthetic_city(db, city, args.residents, seed=args.seed)
        async with db.sessionmaker() as session:
            users = list(
                (
                    await session.execute(
                        select(Endpoint.address)
                        .where(Endpoint.channel == "line", Endpoint.status == EndpointStatus.ACTIVE)
                        .order_by(Endpoint.id)
                        .limit(args.residents // 10)
                    )
                ).scalars()
            )
            line_users = len(
                list(
                    (
                        await session.execute(select(Endpoint.id).where(Endpoint.channel == "line"))
                    ).scalars()
                )
            )
        rt = ModeRuntime.build(settings, city, db)
        stack.push_async_callback(rt.close)
        sync_started = time.perf_counter()
        menus = (await sync_menus(rt)).menus
        sync_s = time.perf_counter() - sync_started
        link_started = time.perf_counter()
        await rt.require_line().link_rich_menu(menus["normal"], users)
        link_s = time.perf_counter() - link_started
        async with db.transaction() as session:
            staff = await create_staff(session, "bench-bousai", "防災 ベンチ", ["disaster"])
            token = await issue_token(session, staff)
        headers = {"Authorization": f"Bearer {token}"}
        hub_url = await stack.enter_async_context(hub_processes(settings, work))
        async with aiohttp.ClientSession() as session:
            for path in ("/api/mode", "/api/mode/menus"):  # a running server has served before
                async with session.get(hub_url + path, headers=headers) as response:
                    response.raise_for_status()
            on = await measure_switch(
                session, hub_url, line_url, headers, "disaster", menus["disaster-now"], len(users)
            )
            off = await measure_switch(
                session, hub_url, line_url, headers, "normal", menus["normal"], len(users)
            )
    bulk_floor = len(users) / BULK_USERS / LINE_OTHER_PER_S + line_users / LINE_OTHER_PER_S
    return {
        "bench": "mode",
        "residents": args.residents,
        "line_users": line_users,
        "per_user_links": len(users),
        "default_switch_s": on["default_s"],
        "relink_done_s": on["relink_s"],
        "switch_api_s": on["api_s"],
        "switch_done_s": on["done_s"],
        "default_restore_s": off["default_s"],
        "restore_done_s": off["relink_s"],
        "relink_strategy": on["strategy"],
        "batch_requests": on["batches"] + off["batches"],
        "line_batch_allowance": "3 requests/hour, each moves every user linked to a menu",
        "line_batch_duration_s": args.batch_duration,
        "bulk_floor_s": round(bulk_floor, 2),
        "menu_sync_s": round(sync_s, 2),
        "link_setup_s": round(link_s, 2),
        "load_s": loaded.get("load_s"),
        "worker_poll_delay_s": 0.5,
        "steps_on_s": on["steps_s"],
        "steps_off_s": off["steps_s"],
    }


def _default_redis() -> str:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        if sock.connect_ex(("127.0.0.1", 6379)) == 0:
            return "redis://127.0.0.1:6379/15"
    raise SystemExit("no Redis on 127.0.0.1:6379: give --redis-url")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench mode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None, help=f"default: {DEFAULT_URL} (fresh)")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--redis-url", default=None, help="default: redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--batch-duration",
        type=float,
        default=0.0,
        help="seconds the LINE sandbox takes to apply a richmenu batch",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=None,
        help="hub setting mode_batch_poll_s (default: the setting's default)",
    )
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args(argv)
    args.redis_url = args.redis_url or _default_redis()
    args.font = FONT if FONT.is_file() else None
    result = asyncio.run(run(args))
    if not args.json:
        print(
            f"{result['residents']:,} residents, {result['per_user_links']:,} per-user links: "
            f"default menu in {result['default_switch_s']} s, every link moved in "
            f"{result['relink_done_s']} s ({result['relink_strategy']})"
        )
    print(json.dumps(result, ensure_ascii=False), flush=True)
