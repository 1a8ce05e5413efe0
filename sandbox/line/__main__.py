"""`python -m sandbox.line --port 8701 [--no-rate-limits]`: the simulator as its own process.

Prints one JSON line `{"url": ..., "token": ...}` once it listens, then serves until SIGINT or
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from .server import DEFAULT_SPEC_DIR, SANDBOX_TOKEN, LineSandbox
from .state import LineConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.line")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--spec-dir", type=Path, default=DEFAULT_SPEC_DIR)
    parser.add_argument("--token", action="append", help="accepted channel access token(s)")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--open-probability", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-size", type=int, default=1000)
    parser.add_argument("--followers", type=int, default=0, help="generate N followers")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    sandbox = LineSandbox(
        spec_dir=args.spec_dir,
        access_tokens=args.token or [SANDBOX_TOKEN],
        rate_limits=not args.no_rate_limits,
        config=LineConfig(open_probability=args.open_probability, seed=args.seed),
        log_size=args.log_size,
    )
    sandbox.state.add_followers(f"U{index:032x}" for index in range(args.followers))
    url = await sandbox.start(args.host, args.port)
    print(json.dumps({"url": url, "token": (args.token or [SANDBOX_TOKEN])[0]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
