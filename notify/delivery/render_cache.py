"""Rendered messages, once per (broadcast, channel, language, ward) per worker process.

Rendering is a pure function of the broadcast's content, so a thousand batches of the same
broadcast share one rendering. A template error is remembered too: every batch of that
language fails with the same stored error code instead of crashing the worker.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from notify.city import CityConfig
from notify.errors import HubError
from notify.models import Broadcast

MAX_ENTRIES = 512


class RenderFailed(Exception):
    def __init__(self, error: HubError) -> None:
        super().__init__(error.message)
        self.error = error


class RenderCache:
    def __init__(self, city: CityConfig) -> None:
        self.city = city
        self._entries: OrderedDict[tuple[int, int, str, str, str | None], Any] = OrderedDict()

    def render(self, broadcast: Broadcast, channel: str, language: str, ward: str | None) -> Any:
        """The message for one batch (its channel, language and ward: `{{ resident.ward }}`)."""
        key = (broadcast.id, broadcast.version, channel, language, ward)
        if key in self._entries:
            self._entries.move_to_end(key)
            value = self._entries[key]
        else:
            value = self._render(broadcast, channel, language, ward)
            self._entries[key] = value
            if len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        if isinstance(value, RenderFailed):
            raise value
        return value

    def _render(self, broadcast: Broadcast, channel: str, language: str, ward: str | None) -> Any:
        from notify.compose.context import message_context
        from notify.compose.render import render_message

        context = message_context(
            self.city,
            language=language,
            ward_code=ward,
            broadcast_id=broadcast.id,
            title=broadcast.title,
            priority=broadcast.priority,
            send_at=broadcast.send_at or broadcast.started_at,
        )
        try:
            return render_message(broadcast.content, channel, language, context)
        except HubError as error:  # TemplateError, InvalidInput: the content is at fault
            return RenderFailed(error)
