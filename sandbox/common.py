"""Pieces every provider simulator shares: fault injection, request log, counters, control routes.

The hub's workers run in other processes than the sandbox, so everything a test or benchmark
needs to steer or inspect is reachable over HTTP under `/_sandbox/`:

- `GET  /_sandbox/log?limit=N&path=PREFIX&after=SEQ` - the last requests (bounded ring
  buffer); with `after`, the first N since that entry's `seq` (for pollers)
- `GET  /_sandbox/counters?name=delivered&recipient=ID` - per-recipient counters
- `POST /_sandbox/faults` - `{"error_share": .1, "error_status": 503, "timeout_share": 0,
  "hang_s": 30, "slow_ms": 0, "slow_share": 1, "seed": 1, "paths": ["/v2/bot/message"]}`
- `POST /_sandbox/limits` - simulator-specific limits, e.g. `{"enabled": false}`
- `POST /_sandbox/reset` - clear log, counters, faults and simulator state hooks
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aiohttp import web

CONTROL_PREFIX = "/_sandbox/"
_LOGGED_BODY_LIMIT = 64 * 1024

FaultResponder = Callable[[int, str], web.StreamResponse]
ResetHook = Callable[[], None]


@dataclass(slots=True)
class FaultConfig:
    """What share of provider requests fail, hang or are slow. Control routes are never hit."""

    error_share: float = 0.0
    error_status: int = 503
    timeout_share: float = 0.0
    hang_s: float = 30.0  # longer than any sane client timeout: the client gives up first
    slow_ms: float = 0.0
    slow_share: float = 1.0
    seed: int | None = None
    paths: list[str] | None = None  # path prefixes the faults apply to; None = every route

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        config = cls(**data)
        for share in (config.error_share, config.timeout_share, config.slow_share):
            if not 0.0 <= float(share) <= 1.0:
                raise ValueError("shares must be between 0 and 1")
        if not 400 <= int(config.error_status) <= 599:
            raise ValueError("error_status must be a 4xx or 5xx status")
        return config

    def applies_to(self, path: str) -> bool:
        return self.paths is None or any(path.startswith(prefix) for prefix in self.paths)


class FaultInjector:
    """Decides per request, from a seeded RNG so a run can be replayed."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def active(self) -> bool:
        c = self.config
        return bool(c.error_share or c.timeout_share or c.slow_ms)

    def draw(self, path: str) -> tuple[str | None, float]:
        """Return (fault, delay_s): fault is None, "error" or "timeout"."""
        c = self.config
        if not c.applies_to(path):
            return None, 0.0
        delay = c.slow_ms / 1000.0 if c.slow_ms and self._rng.random() < c.slow_share else 0.0
        roll = self._rng.random()
        if roll < c.timeout_share:
            return "timeout", delay
        if roll < c.timeout_share + c.error_share:
            return "error", delay
        return None, delay


class RequestLog:
    """A bounded ring buffer of what crossed the wire (newest last)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """`entry` may hold `"request": (method, query, headers, body, size)`: it becomes
        `method`, `query`, `headers`, `body` and `size` when the log is read, not on the
        provider path, which a send crosses hundreds of thousands of times."""
        self._seq += 1
        entry.setdefault("seq", self._seq)
        entry.setdefault("t", time.time())
        self._entries.append(entry)
        return entry

    def entries(
        self, *, path: str | None = None, limit: int | None = None, after: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest `limit` entries; with `after` (a `seq`), the oldest `limit` entries
        since that one, so a poller reads each entry once and skips none."""
        for entry in self._entries:
            if "request" in entry:
                entry.update(_describe(*entry.pop("request")))
        selected = [
            e
            for e in self._entries
            if (path is None or e.get("path", "").startswith(path))
            and (after is None or e["seq"] > after)
        ]
        if not limit:
            return selected
        return selected[:limit] if after is not None else selected[-limit:]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Counters:
    """Named per-recipient counters: `add("delivered", token)` proves "exactly one each"."""

    def __init__(self) -> None:
        self._by_name: dict[str, Counter[str]] = {}

    def add(self, name: str, recipient: str, n: int = 1) -> None:
        self._by_name.setdefault(name, Counter())[recipient] += n

    def add_many(self, name: str, recipients: Iterable[str]) -> None:
        self._by_name.setdefault(name, Counter()).update(recipients)

    def get(self, name: str, recipient: str) -> int:
        return self._by_name.get(name, Counter())[recipient]

    def total(self, name: str) -> int:
        return sum(self._by_name.get(name, Counter()).values())

    def snapshot(
        self, name: str | None = None, recipient: str | None = None
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for counter_name, counter in self._by_name.items():
            if name is not None and counter_name != name:
                continue
            per = {recipient: counter[recipient]} if recipient is not None else dict(counter)
            out[counter_name] = {"total": sum(counter.values()), "by_recipient": per}
        return out

    def clear(self) -> None:
        self._by_name.clear()


class WindowLimiter:
    """Fixed-window request counting per key, like the providers' per-second/-minute quotas."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    def allow(self, key: str, limit: int, window_s: float, n: int = 1) -> bool:
        window = int(time.monotonic() // window_s)
        current, used = self._windows.get(key, (window, 0))
        if current != window:
            used = 0
        if used + n > limit:
            self._windows[key] = (window, used)
            return False
        self._windows[key] = (window, used + n)
        return True

    def clear(self) -> None:
        self._windows.clear()


@dataclass(slots=True)
class SandboxState:
    """Shared mutable state of one simulator; handlers reach it through `STATE_KEY`."""

    name: str
    limits: dict[str, Any]
    log: RequestLog = field(default_factory=RequestLog)
    counters: Counters = field(default_factory=Counters)
    faults: FaultInjector = field(default_factory=FaultInjector)
    limiter: WindowLimiter = field(default_factory=WindowLimiter)
    reset_hooks: list[ResetHook] = field(default_factory=list)
    default_limits: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.default_limits = dict(self.limits)

    def update_limits(self, data: Mapping[str, Any]) -> None:
        unknown = set(data) - set(self.limits)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}; known: {sorted(self.limits)}")
        self.limits.update(data)
        self.limiter.clear()

    def reset(self) -> None:
        self.log.clear()
        self.counters.clear()
        self.faults.configure(FaultConfig())
        self.limiter.clear()
        self.limits.clear()
        self.limits.update(self.default_limits)
        for hook in self.reset_hooks:
            hook()


STATE_KEY: web.AppKey[SandboxState] = web.AppKey("sandbox_state", SandboxState)


def json_error_responder(status: int, message: str) -> web.StreamResponse:
    return web.json_response({"message": message}, status=status)


def log_request(
    state: SandboxState,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    raw: bytes,
) -> dict[str, Any]:
    """The request's entry in the log (described when the log is read, not now)."""
    kept = raw if len(raw) <= _LOGGED_BODY_LIMIT else None  # a big upload: its size only
    return state.log.add({"path": path, "request": (method, query, headers, kept, len(raw))})


async def injected_fault(
    state: SandboxState, path: str, entry: dict[str, Any]
) -> tuple[int, str] | None:
    """Waits as the configured faults say; returns the injected failure's (status, message),
    or None when the request should be answered."""
    fault, delay = state.faults.draw(path) if state.faults.active() else (None, 0.0)
    if delay:
        await asyncio.sleep(delay)
    if fault == "timeout":
        entry["fault"] = "timeout"
        await asyncio.sleep(state.faults.config.hang_s)
        return 504, "sandbox: injected timeout"
    if fault == "error":
        entry["fault"] = "error"
        return state.faults.config.error_status, "sandbox: injected error"
    return None


def fault_middleware(responder: FaultResponder = json_error_responder) -> Any:
    """Logs every provider request and injects the configured faults (not on control routes)."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        state = request.app[STATE_KEY]
        raw = await request.read()  # cached by aiohttp: the handler can read it again
        entry = log_request(
            state, request.method, request.path, request.query_string, request.headers, raw
        )
        if (fault := await injected_fault(state, request.path, entry)) is not None:
            response = responder(*fault)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                entry["status"] = exc.status
                raise
        entry["status"] = response.status
        return response

    return middleware


def _describe(
    method: str, query: str, headers: Mapping[str, str], raw: bytes | None, size: int
) -> dict[str, Any]:
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "").partition(";")[0].strip().lower()
    body: Any = None
    if raw:
        if content_type == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        elif content_type.startswith("text/") or content_type.endswith("x-www-form-urlencoded"):
            body = raw.decode("utf-8", "replace")
    return {
        "method": method,
        "query": query,
        "headers": {k: v for k, v in lowered.items() if k != "authorization"},
        "body": body,
        "size": size,
    }


async def _get_log(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        limit = int(request.query.get("limit", "1000"))
        after = int(request.query["after"]) if "after" in request.query else None
    except ValueError:
        return web.json_response({"message": "limit and after must be integers"}, status=400)
    entries = state.log.entries(path=request.query.get("path"), limit=limit, after=after)
    return web.json_response({"entries": entries, "total_kept": len(state.log)})


async def _get_counters(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    snapshot = state.counters.snapshot(request.query.get("name"), request.query.get("recipient"))
    return web.json_response({"counters": snapshot})


async def _post_faults(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        config = FaultConfig.from_json(await request.json())
    except (ValueError, TypeError) as exc:
        return web.json_response({"message": str(exc)}, status=400)
    state.faults.configure(config)
    return web.json_response({"faults": asdict(config)})


async def _post_limits(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("limits must be a JSON object")
        state.update_limits(data)
    except ValueError as exc:
        return web.json_response({"message": str(exc)}, status=400)
    return web.json_response({"limits": state.limits})


async def _get_limits(request: web.Request) -> web.Response:
    return web.json_response({"limits": request.app[STATE_KEY].limits})


async def _post_reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"reset": True})


def add_control_routes(app: web.Application) -> None:
    app.router.add_get(CONTROL_PREFIX + "log", _get_log)
    app.router.add_get(CONTROL_PREFIX + "counters", _get_counters)
    app.router.add_post(CONTROL_PREFIX + "faults", _post_faults)
    app.router.add_get(CONTROL_PREFIX + "limits", _get_limits)
    app.router.add_post(CONTROL_PREFIX + "limits", _post_limits)
    app.router.add_post(CONTROL_PREFIX + "reset", _post_reset)


def make_sandbox_app(
    state: SandboxState,
    responder: FaultResponder = json_error_responder,
    *,
    client_max_size: int = 4 * 1024 * 1024,
) -> web.Application:
    """An aiohttp app with the fault middleware, state and control routes already in place."""
    app = web.Application(
        middlewares=[fault_middleware(responder)], client_max_size=client_max_size
    )
    app[STATE_KEY] = state
    add_control_routes(app)
    return app


class AppServer:
    """Runs one aiohttp app on 127.0.0.1 (port 0 = any free port) inside the current loop."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        # Short shutdown: an injected hang must not hold a test's teardown for 30 s.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]  # the port the OS picked when asked for 0
        self.url = f"http://{self._host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class SandboxControl:
    """Client side of the control routes, for tests and benchmarks in other processes."""

    def __init__(self, base_url: str, session: Any) -> None:
        self._base = base_url.rstrip("/") + CONTROL_PREFIX
        self._session = session  # an aiohttp.ClientSession owned by the caller

    async def _call(self, method: str, route: str, **kwargs: Any) -> dict[str, Any]:
        async with self._session.request(method, self._base + route, **kwargs) as response:
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
            return result

    async def counters(self, name: str | None = None, recipient: str | None = None) -> dict:
        params = {k: v for k, v in (("name", name), ("recipient", recipient)) if v is not None}
        return (await self._call("GET", "counters", params=params))["counters"]

    async def log(
        self, path: str | None = None, limit: int = 1000, after: int | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit} | ({"path": path} if path else {})
        if after is not None:
            params["after"] = after
        return (await self._call("GET", "log", params=params))["entries"]

    async def faults(self, **config: Any) -> None:
        await self._call("POST", "faults", json=config)

    async def limits(self, **limits: Any) -> dict[str, Any]:
        return (await self._call("POST", "limits", json=limits))["limits"]

    async def reset(self) -> None:
        await self._call("POST", "reset")
