"""LINE's per-endpoint rate limits, counted in a sliding window per endpoint.

LINE counts each API function separately per channel; a request over the limit gets 429 with
no Retry-After. The rules live in the shared `SandboxState.limits` dict, so
`POST /_sandbox/limits {"enabled": false}` or `{"multicast": [500, 1]}` changes them at run time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

# rule name -> [requests, window seconds]
DEFAULT_LIMITS: dict[str, Any] = {
    "enabled": True,
    "push": [2000, 1.0],
    "multicast": [200, 1.0],
    "broadcast": [60, 3600.0],
    "narrowcast": [60, 3600.0],
    "insight": [60, 3600.0],
    "richmenu_batch": [3, 3600.0],
    "richmenu_create_delete": [100, 3600.0],
    "other": [2000, 1.0],
}

_RULES_BY_ROUTE = {
    ("POST", "/v2/bot/message/push"): "push",
    ("POST", "/v2/bot/message/multicast"): "multicast",
    ("POST", "/v2/bot/message/broadcast"): "broadcast",
    ("POST", "/v2/bot/message/narrowcast"): "narrowcast",
    ("POST", "/v2/bot/richmenu/batch"): "richmenu_batch",
    ("POST", "/v2/bot/richmenu"): "richmenu_create_delete",
    ("DELETE", "/v2/bot/richmenu/{richMenuId}"): "richmenu_create_delete",
}


def rule_for(method: str, template: str) -> str:
    if template.startswith("/v2/bot/insight/"):
        return "insight"
    return _RULES_BY_ROUTE.get((method, template), "other")


class SlidingWindowLimiter:
    """Remembers the accepted request times of each endpoint, at most `limit` of them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, float, deque[float]]] = {}

    def allow(self, bucket: str, rule: str, limits: Mapping[str, Any]) -> bool:
        if not limits.get("enabled", True):
            return True
        limit, window_s = limits.get(rule) or limits["other"]
        limit, window_s = int(limit), float(window_s)
        now = self._clock()
        current = self._windows.get(bucket)
        if current is None or current[0] != limit or current[1] != window_s:
            current = (limit, window_s, deque(maxlen=max(limit, 1)))
            self._windows[bucket] = current
        times = current[2]
        while times and times[0] <= now - window_s:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def clear(self) -> None:
        self._windows.clear()
