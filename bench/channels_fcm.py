"""FCM throughput: the channel adapter, a bare aiohttp client and firebase-admin's sender.

All three send the same notification to distinct device tokens of the same FCM sandbox,
which runs in its own process (`python -m sandbox --only fcm --no-limits`), so the CPU
measured here (`time.process_time()` of this process) is the client's alone. The OAuth token
is fetched before timing in every variant.

- adapter: `FcmChannel.send_batch` on batches of 500, two batches in flight (the worker runs
  up to 20 send jobs at once; one at a time would measure the wait for each batch's slowest
  answer rather than the adapter), `concurrency` connections shared by both
- bare: one `session.post(json=...)` per message, `concurrency` at a time
- firebase_admin: `messaging.send_each_async` on batches of 500 (httpx; its URL is moved to the
  sandbox through the private `_MessagingService.FCM_URL`, as DESIGN.md describes)

    python -m bench channels_fcm --messages 10000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from channels.base import PushMessage, Recipient, SendContext
from channels.fcm import FcmChannel
from channels.fcm_auth import GoogleTokenSource

BATCH = 500
MESSAGE = PushMessage(
    "【川崎市】大雨警報", "川崎市に大雨警報が発表されました。", {"broadcast": "1"}
)


@asynccontextmanager
async def sandbox_process(only: str) -> AsyncIterator[dict[str, Any]]:
    """`python -m sandbox --only <only> --no-limits` in a child process; yields its JSON line."""
    work_dir = tempfile.mkdtemp(prefix="bench-sandbox-")
    command = [sys.executable, "-m", "sandbox", "--only", only, "--no-limits"]
    process = await asyncio.create_subprocess_exec(
        *command, "--work-dir", work_dir, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the sandbox did not start")
        yield json.loads(line)
    finally:
        process.terminate()
        await process.wait()


def tokens(n: int, offset: int = 0) -> list[str]:
    return [f"bench{offset + i:07d}:APA91b-{offset + i:0140d}"[:163] for i in range(n)]


async def timed(run: Callable[[], Awaitable[int]]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    sent = await run()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "sent": sent}


async def run_bare(fcm: dict[str, Any], devices: list[str], concurrency: int) -> dict:
    access_token = await GoogleTokenSource(Path(fcm["credentials_file"])).token()
    url = f"{fcm['url']}/v1/projects/{fcm['project_id']}/messages:send"
    headers = {"Authorization": f"Bearer {access_token}"}
    notification = {"title": MESSAGE.title, "body": MESSAGE.body}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        pending = iter(devices)

        async def worker() -> int:
            sent = 0
            for token in pending:
                body = {"message": {"token": token, "notification": notification,
                                    "data": dict(MESSAGE.data)}}  # fmt: skip
                async with session.post(url, json=body) as response:
                    await response.read()
                    sent += response.status == 200
            return sent

        async def run() -> int:
            return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))

        return await timed(run)


async def run_adapter(
    fcm: dict[str, Any], devices: list[str], concurrency: int, in_flight: int = 2
) -> dict:
    channel = FcmChannel(
        api_url=fcm["url"],
        project_id=fcm["project_id"],
        credentials_file=Path(fcm["credentials_file"]),
        concurrency=concurrency,
    )
    context = SendContext(broadcast_id=1)
    batches = [
        [Recipient(endpoint_id=i, address=t) for i, t in enumerate(devices[s : s + BATCH])]
        for s in range(0, len(devices), BATCH)
    ]
    try:
        await channel.send_batch(batches[0][:1], MESSAGE, context)  # token + connection warm-up

        pending = iter(batches)

        async def lane() -> int:
            sent = 0
            for batch in pending:
                results = await channel.send_batch(batch, MESSAGE, context)
                sent += sum(result.outcome == "sent" for result in results)
            return sent

        async def run() -> int:
            return sum(await asyncio.gather(*(lane() for _ in range(in_flight))))

        return await timed(run)
    finally:
        await channel.close()


async def run_firebase_admin(fcm: dict[str, Any], devices: list[str]) -> dict:
    import firebase_admin
    from firebase_admin import credentials, messaging

    messaging._MessagingService.FCM_URL = fcm["url"] + "/v1/projects/{0}/messages:send"
    certificate = credentials.Certificate(fcm["credentials_file"])
    google_credential = certificate.get_credential()
    # Keep google-auth's Regional Access Boundary look-up (a fixed Google host) from starting.
    google_credential._set_regional_access_boundary(
        {
            "encodedLocations": "0x0",
            "expiry": datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1),
        }
    )
    app = firebase_admin.initialize_app(certificate, name=f"bench-{time.time_ns()}")
    try:
        notification = messaging.Notification(title=MESSAGE.title, body=MESSAGE.body)

        def batch(start: int) -> list[messaging.Message]:
            return [
                messaging.Message(fid=t, notification=notification, data=dict(MESSAGE.data))
                for t in devices[start : start + BATCH]
            ]

        await messaging.send_each_async(batch(0)[:1], dry_run=False, app=app)  # warm-up

        async def run() -> int:
            sent = 0
            for start in range(0, len(devices), BATCH):
                response = await messaging.send_each_async(batch(start), dry_run=False, app=app)
                sent += response.success_count
            return sent

        return await timed(run)
    finally:
        # delete_app() would asyncio.run() the httpx close inside our loop: close it here.
        await messaging._get_messaging_service(app)._async_client.aclose()


async def paired_rounds(
    bare: Callable[[int], Awaitable[dict]],
    adapter: Callable[[int], Awaitable[dict]],
    n_messages: int,
    rounds: int,
) -> dict[str, Any]:
    """Run bare and adapter back to back `rounds` times, swapping who goes first each round.

    The sandbox shares a small machine with everything else on it: pairing runs that are
    seconds apart, and taking medians, keeps a neighbour's burst from deciding the ratio.
    """
    pairs = []
    for round_no in range(rounds):
        order = [("bare", bare), ("adapter", adapter)]
        runs = {}
        for name, run in order if round_no % 2 == 0 else order[::-1]:
            runs[name] = _rates(await run(round_no), n_messages)
        pairs.append(runs)
    adapter_rate = statistics.median(p["adapter"][0] for p in pairs)
    bare_rate = statistics.median(p["bare"][0] for p in pairs)
    return {
        "adapter_per_s": round(adapter_rate),
        "bare_per_s": round(bare_rate),
        "ratio": round(statistics.median(p["adapter"][0] / p["bare"][0] for p in pairs), 3),
        "adapter_cpu_ms_per_msg": round(statistics.median(p["adapter"][1] for p in pairs), 4),
        "bare_cpu_ms_per_msg": round(statistics.median(p["bare"][1] for p in pairs), 4),
        "rounds": rounds,
    }


def summary(label: str, result: Mapping[str, Any]) -> str:
    """The human line of a channel benchmark (adapter vs bare), printed before its JSON."""
    return (
        f"{label}: adapter {result['adapter_per_s']}/s, bare {result['bare_per_s']}/s "
        f"(ratio {result['ratio']}); CPU ms/msg adapter {result['adapter_cpu_ms_per_msg']}, "
        f"bare {result['bare_cpu_ms_per_msg']}"
    )


def _rates(run: dict[str, float], total: int) -> tuple[float, float]:
    if run["sent"] != total:
        raise RuntimeError(f"only {run['sent']} of {total} messages were accepted")
    return total / run["wall_s"], run["cpu_s"] * 1000 / total


async def measure(
    n_messages: int = 4000,
    *,
    concurrency: int = 100,
    firebase_admin_messages: int = 2000,
    rounds: int = 5,
    fcm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Messages per second and client CPU ms per message: adapter vs bare (and firebase-admin)."""
    if fcm is None:
        async with sandbox_process("fcm") as described:
            return await measure(
                n_messages,
                concurrency=concurrency,
                firebase_admin_messages=firebase_admin_messages,
                rounds=rounds,
                fcm=described["fcm"],
            )
    await run_bare(fcm, tokens(200, 9_000_000), concurrency)  # warm the sandbox's caches

    async def bare(round_no: int) -> dict:
        devices = tokens(n_messages, 2 * round_no * n_messages)
        return await run_bare(fcm, devices, concurrency)

    async def adapter(round_no: int) -> dict:
        devices = tokens(n_messages, (2 * round_no + 1) * n_messages)
        return await run_adapter(fcm, devices, concurrency)

    paired = await paired_rounds(bare, adapter, n_messages, rounds)
    result: dict[str, Any] = {
        **paired,
        "messages": n_messages,
        "concurrency": concurrency,
        "batches_in_flight": 2,
    }
    if firebase_admin_messages:
        devices = tokens(firebase_admin_messages, 2 * rounds * n_messages)
        fa_rate, fa_cpu = _rates(await run_firebase_admin(fcm, devices), len(devices))
        result["firebase_admin_per_s"] = round(fa_rate)
        result["firebase_admin_cpu_ms_per_msg"] = round(fa_cpu, 4)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench channels_fcm")
    parser.add_argument("--messages", type=int, default=4000, help="per client and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--firebase-admin-messages", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = asyncio.run(
        measure(
            args.messages,
            concurrency=args.concurrency,
            firebase_admin_messages=args.firebase_admin_messages,
            rounds=args.rounds,
        )
    )
    if not args.json:
        firebase_admin = result.get("firebase_admin_cpu_ms_per_msg")
        print(f"{summary('FCM', result)}, firebase-admin {firebase_admin}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
