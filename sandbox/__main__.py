"""`python -m sandbox [--no-limits] [--work-dir DIR]`: run every sandbox in this process.

Prints one JSON line with the URLs (and the FCM service-account file it wrote), then serves
until SIGINT/SIGTERM. The demo hub and the benchmarks start it as a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
from pathlib import Path

import uvloop

from sandbox.runner import DEFAULT_PROJECT_ID, DEFAULT_REFERENCE_DIR, start_sandboxes


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=None, help="where to write key files")
    parser.add_argument("--reference-dir", type=Path, default=DEFAULT_REFERENCE_DIR)
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID)
    parser.add_argument("--no-limits", action="store_true", help="switch rate limits off")
    parser.add_argument("--fcm-port", type=int, default=0)
    parser.add_argument("--smtp-port", type=int, default=0)
    parser.add_argument("--only", choices=["fcm", "smtp", "line"], action="append")
    parser.add_argument(
        "--mail-readers",
        nargs=2,
        type=float,
        default=(0.0, 0.0),
        metavar=("OPEN_SHARE", "CLICK_SHARE"),
        help="simulated readers: share of mails opened, share of those clicked (demo)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="sandbox-"))
    only = set(args.only or ["fcm", "smtp", "line"])
    handles = await start_sandboxes(
        work_dir,
        reference_dir=args.reference_dir,
        project_id=args.project_id,
        limits_enabled=not args.no_limits,
        with_smtp="smtp" in only,
        with_line="line" in only,
        fcm_port=args.fcm_port,
        smtp_port=args.smtp_port,
        mail_readers=tuple(args.mail_readers),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(handles.describe(), ensure_ascii=False), flush=True)
    try:
        await stop.wait()
    finally:
        await handles.stop()


def main(argv: list[str] | None = None) -> None:
    # uvloop, as the worker runs: the sandboxes stand in for providers on other machines,
    # so the less of this machine they take from the hub in a benchmark, the better.
    uvloop.run(serve(parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
