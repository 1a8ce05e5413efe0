"""All channel adapters against bare clients, each on its own sandbox process (limits off).

    python -m bench channels --json

The last stdout line is `{"line": {...}, "fcm": {...}, "email": {...}}`, each with
`adapter_per_s`, `bare_per_s`, `ratio`, `adapter_cpu_ms_per_msg` and `bare_cpu_ms_per_msg`.
Target on a 2-core machine: ratio ≥ 0.8 for LINE and FCM.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
from typing import Any

from bench import channels_email, channels_fcm


async def measure_all(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if importlib.util.find_spec("bench.channels_line") is None:
        result["line"] = {"skipped": "bench.channels_line is not there"}
    else:
        line = importlib.import_module("bench.channels_line")
        result["line"] = await line.measure(args.line_requests)
    result["fcm"] = await channels_fcm.measure(
        args.fcm_messages, firebase_admin_messages=args.firebase_admin_messages
    )
    result["email"] = await channels_email.measure(args.email_messages)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench channels")
    parser.add_argument("--line-requests", type=int, default=6000, help="multicasts of 500")
    parser.add_argument("--fcm-messages", type=int, default=4000, help="per round")
    parser.add_argument("--firebase-admin-messages", type=int, default=2000)
    parser.add_argument("--email-messages", type=int, default=1000, help="per round")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = asyncio.run(measure_all(args))
    if not args.json:
        for name, numbers in result.items():
            if "ratio" in numbers:
                print(channels_fcm.summary(name, numbers))
            else:
                print(f"{name}: {numbers}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
