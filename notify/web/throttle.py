"""Per-client limits on the public writes a bot could abuse (email subscribe: one
confirmation mail each; app device registration: one resident each).

A fixed one-minute window per client address and bucket, counted in Redis, so every server
process shares it. IPv6 clients are counted per /64, which one household or host usually
holds whole. Behind a reverse proxy, `HUB_TRUSTED_PROXIES` (addresses or networks, comma
separated) names the proxies whose `X-Forwarded-For` is believed; anyone else's is ignored.
"""

from __future__ import annotations

import ipaddress
import time

from aiohttp import web

from notify.errors import HubError
from notify.settings import networks
from notify.web.keys import REDIS, SETTINGS


class TooManyRequests(HubError):
    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            "しばらくしてからもう一度お試しください / too many requests, try again shortly"
        )
        self.headers = {"Retry-After": str(retry_after_s)}


async def throttle(request: web.Request, bucket: str) -> None:
    """Count this request against its client's window; TooManyRequests past the limit."""
    settings = request.app[SETTINGS]
    now = time.time()
    window = int(now // 60)
    key = f"throttle:{bucket}:{client_key(request, settings.trusted_proxies)}:{window}"
    redis = request.app[REDIS]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    if int(count) > settings.public_writes_per_min:
        raise TooManyRequests(retry_after_s=60 - int(now % 60))


def client_key(request: web.Request, trusted: str) -> str:
    """The client's address (an IPv6 one as its /64), seen through trusted proxies only."""
    address = _address(request.remote or "")
    proxies = networks(trusted)  # checked when the settings were built
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    # From the nearest hop outwards, while the hop that handed the request on is trusted.
    for hop in reversed([h for h in hops if h]):
        if address is None or not any(address in net for net in proxies):
            break
        address = _address(hop)
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
