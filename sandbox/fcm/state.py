"""What the FCM simulator knows about the world: devices, topics, credentials, message ids."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.fcm.oauth import OAuthState

# Real registration tokens look like `<22 chars>:APA91b<~140 chars>`; FIDs are 22 chars. We only
# reject what cannot be a token at all, so test data stays readable.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-:.]{8,4096}$")
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")


@dataclass(slots=True)
class FcmWorld:
    project_id: str | None = None  # None: any project in the URL is accepted
    unregistered: set[str] = field(default_factory=set)
    sender_id_mismatch: set[str] = field(default_factory=set)
    # Tokens starting with this prefix are UNREGISTERED without being registered as dead, so
    # demo data can contain uninstalled apps without a control call.
    unregistered_prefix: str = "unregistered-"
    topics: dict[str, set[str]] = field(default_factory=dict)
    oauth: OAuthState = field(default_factory=OAuthState)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def token_is_malformed(self, token: str) -> bool:
        return _TOKEN_SHAPE.match(token) is None

    def token_is_unregistered(self, token: str) -> bool:
        return token in self.unregistered or (
            bool(self.unregistered_prefix) and token.startswith(self.unregistered_prefix)
        )

    def subscribe(self, topic: str, tokens: list[str]) -> None:
        self.topics.setdefault(topic, set()).update(tokens)

    def unsubscribe(self, topic: str, tokens: list[str]) -> None:
        self.topics.get(topic, set()).difference_update(tokens)

    def topics_of(self, token: str) -> set[str]:
        return {topic for topic, tokens in self.topics.items() if token in tokens}

    def next_message_name(self, project: str) -> str:
        return f"projects/{project}/messages/0:{next(self._ids):016d}%sandbox"

    def reset(self) -> None:
        self.unregistered.clear()
        self.sender_id_mismatch.clear()
        self.topics.clear()


FCM_KEY: web.AppKey[FcmWorld] = web.AppKey("fcm_world", FcmWorld)
