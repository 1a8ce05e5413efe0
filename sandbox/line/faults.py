"""One-shot faults on top of `sandbox.common`'s random ones: "the next N multicasts fail".

`after_accept` makes the simulator do the work first (deliver, remember the retry key) and
then fail or hang anyway: the case where the client sees a 5xx or a timeout although LINE
accepted the request, so a retry with the same `X-Line-Retry-Key` must get 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(slots=True)
class ForcedFault:
    # "error": answer `status`; "timeout": hang `hang_s`, then 504; "disconnect": drop the
    # connection without an answer.
    kind: str = "error"
    status: int = 500
    after_accept: bool = False
    paths: list[str] | None = None  # path prefixes; None = any provider route
    hang_s: float = 30.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ForcedFault:
        fault = cls(**data)
        if fault.kind not in ("error", "timeout", "disconnect"):
            raise ValueError("kind must be 'error', 'timeout' or 'disconnect'")
        if not 400 <= int(fault.status) <= 599:
            raise ValueError("status must be a 4xx or 5xx status")
        return fault

    def applies_to(self, path: str) -> bool:
        return self.paths is None or any(path.startswith(prefix) for prefix in self.paths)


class ForcedFaults:
    def __init__(self) -> None:
        self.queue: list[ForcedFault] = []

    def add(self, fault: ForcedFault, count: int = 1) -> None:
        self.queue.extend([fault] * count)

    def take(self, path: str) -> ForcedFault | None:
        for index, fault in enumerate(self.queue):
            if fault.applies_to(path):
                return self.queue.pop(index)
        return None

    def clear(self) -> None:
        self.queue.clear()


FORCED_FAULTS: web.AppKey[ForcedFaults] = web.AppKey("line_forced_faults", ForcedFaults)
