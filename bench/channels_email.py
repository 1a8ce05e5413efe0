"""Email throughput: the channel adapter against plain aiosmtplib on the same SMTP sandbox.

The sandbox runs in its own process (`python -m sandbox --only smtp --no-limits`), so the CPU
measured here is the client's. Both send `connections` SMTP sessions in parallel, each reused
for its share of the batch.

- adapter: `EmailChannel.send_batch` on batches of 200 (personalised MIME per recipient:
  text + HTML, tracked links, List-Unsubscribe), one batch after another
- bare: one pre-built plain-text message, `sendmail` per recipient

    python -m bench channels_email --messages 2000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from email import policy
from email.message import EmailMessage as MimeMessage
from typing import Any

import aiosmtplib

from bench.channels_fcm import paired_rounds, sandbox_process, summary, timed
from channels.base import EmailMessage, Recipient, SendContext
from channels.email import EmailChannel

BATCH = 200
MESSAGE = EmailMessage(
    subject="【川崎市】乳幼児健診のお知らせ",
    text="健診の日程が決まりました。詳しくは市のホームページをご覧ください。\n" * 5,
    html="<html><body><p>健診の日程が決まりました。</p>"
    '<p><a href="https://www.city.kawasaki.jp/kenshin">詳しく</a></p></body></html>',
)


def addresses(n: int, offset: int = 0) -> list[str]:
    return [f"resident{offset + i:07d}@example.jp" for i in range(n)]


def extra(i: int) -> dict[str, str]:
    token = f"{i:012x}"
    return {
        "unsubscribe_url": f"https://c.example.jp/u/{token}",
        "click_url_prefix": f"https://c.example.jp/c/{token}?u=",
        "open_pixel_url": f"https://c.example.jp/o/{token}.gif",
    }


async def run_bare(smtp: dict[str, Any], to: list[str], connections: int) -> dict:
    mime = MimeMessage(policy=policy.SMTP)
    mime["From"], mime["Subject"] = "info@city.example.jp", MESSAGE.subject
    mime.set_content(MESSAGE.text)
    raw = mime.as_bytes()
    stripes = [to[i::connections] for i in range(connections)]

    async def stripe(addresses_: list[str]) -> int:
        async with aiosmtplib.SMTP(hostname=smtp["host"], port=smtp["port"]) as client:
            for address in addresses_:
                await client.sendmail("bounces@city.example.jp", [address], raw)
        return len(addresses_)

    async def run() -> int:
        return sum(await asyncio.gather(*(stripe(s) for s in stripes)))

    return await timed(run)


async def run_adapter(smtp: dict[str, Any], to: list[str], connections: int) -> dict:
    channel = EmailChannel(
        host=smtp["host"],
        port=smtp["port"],
        mail_from="info@city.example.jp",
        from_name="川崎市",
        envelope_from="bounces@city.example.jp",
        connections=connections,
    )
    batches = [
        [
            Recipient(endpoint_id=i, address=a, extra=extra(i))
            for i, a in enumerate(to[s : s + BATCH], s)
        ]
        for s in range(0, len(to), BATCH)
    ]
    context = SendContext(broadcast_id=1)

    async def run() -> int:
        sent = 0
        for batch in batches:
            results = await channel.send_batch(batch, MESSAGE, context)
            sent += sum(result.outcome == "sent" for result in results)
        return sent

    return await timed(run)


async def measure(
    n_messages: int = 1000,
    *,
    connections: int = 4,
    rounds: int = 3,
    smtp: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Messages per second and client CPU ms per message: adapter vs bare aiosmtplib."""
    if smtp is None:
        async with sandbox_process("smtp") as described:
            return await measure(
                n_messages, connections=connections, rounds=rounds, smtp=described["smtp"]
            )
    await run_bare(smtp, addresses(50, 9_000_000), connections)  # warm-up

    async def bare(round_no: int) -> dict:
        return await run_bare(smtp, addresses(n_messages, 2 * round_no * n_messages), connections)

    async def adapter(round_no: int) -> dict:
        to = addresses(n_messages, (2 * round_no + 1) * n_messages)
        return await run_adapter(smtp, to, connections)

    paired = await paired_rounds(bare, adapter, n_messages, rounds)
    return {**paired, "messages": n_messages, "connections": connections}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench channels_email")
    parser.add_argument("--messages", type=int, default=1000, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.messages, connections=args.connections, rounds=args.rounds))
    if not args.json:
        print(summary("email", result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
