"""Helpers shared by the LINE channel tests."""

from __future__ import annotations

from collections.abc import Sequence

from channels.base import LineMessage, Recipient
from tests.sandbox_line.helpers import Line, user

__all__ = ["TEXT", "Line", "recipients", "user", "users"]

TEXT = LineMessage(messages=({"type": "text", "text": "【訓練】避難所が開設されました"},))


def recipients(ids: Sequence[str]) -> list[Recipient]:
    return [Recipient(endpoint_id=index, address=uid) for index, uid in enumerate(ids)]


def users(n: int, start: int = 0) -> list[str]:
    return [user(i) for i in range(start, start + n)]
