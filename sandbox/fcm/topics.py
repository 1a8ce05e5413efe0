"""Topics: condition expressions and the two subscription APIs.

- FCM v1 `projects/{p}/registrations/{token}/topicSubscriptions` (what firebase-admin 7 uses):
  POST `?topic_name=` / `?topicName=` (409 ALREADY_EXISTS when subscribed), DELETE
  `.../topicSubscriptions/{topic}?allow_missing=true`, GET list.
- The Instance ID batch API (`/iid/v1:batchAdd`, `/iid/v1:batchRemove`, ≤1,000 tokens).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from sandbox.common import STATE_KEY
from sandbox.fcm.errors import google_error
from sandbox.fcm.state import FCM_KEY, TOPIC_NAME

MAX_CONDITION_TOPICS = 5
_TOKENS = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|'([^']*)'\s+in\s+topics|\"([^\"]*)\"\s+in\s+topics)")

Predicate = Callable[[set[str]], bool]


class ConditionError(ValueError):
    pass


def parse_condition(text: str) -> tuple[Predicate, set[str]]:
    """`"'a' in topics && ('b' in topics || !('c' in topics))"` → (predicate, topics named)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKENS.match(text, pos)
        if match is None:
            raise ConditionError(f"Invalid condition expression at offset {pos}")
        op, single, double = match.groups()
        tokens.append(("op", op) if op else ("topic", single if single is not None else double))
        pos = match.end()
    topics = {value for kind, value in tokens if kind == "topic"}
    if not topics or len([t for t in tokens if t[0] == "topic"]) > MAX_CONDITION_TOPICS:
        raise ConditionError("A condition names between 1 and 5 topics")
    if any(not TOPIC_NAME.match(t) for t in topics):
        raise ConditionError("Invalid topic name in condition")
    predicate, rest = _or(tokens)
    if rest:
        raise ConditionError("Unexpected text after the condition")
    return predicate, topics


def _or(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    left, tokens = _and(tokens)
    while tokens and tokens[0] == ("op", "||"):
        right, tokens = _and(tokens[1:])
        left = (lambda a, b: lambda s: a(s) or b(s))(left, right)
    return left, tokens


def _and(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    left, tokens = _unary(tokens)
    while tokens and tokens[0] == ("op", "&&"):
        right, tokens = _unary(tokens[1:])
        left = (lambda a, b: lambda s: a(s) and b(s))(left, right)
    return left, tokens


def _unary(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    if not tokens:
        raise ConditionError("Condition ends too early")
    kind, value = tokens[0]
    if (kind, value) == ("op", "!"):
        inner, rest = _unary(tokens[1:])
        return (lambda s: not inner(s)), rest
    if (kind, value) == ("op", "("):
        inner, rest = _or(tokens[1:])
        if not rest or rest[0] != ("op", ")"):
            raise ConditionError("Missing closing parenthesis")
        return inner, rest[1:]
    if kind == "topic":
        return (lambda s: value in s), tokens[1:]
    raise ConditionError(f"Unexpected {value!r}")


def condition_audience(world_topics: dict[str, set[str]], condition: str) -> set[str]:
    """Devices a condition reaches: every device known to any topic is considered."""
    predicate, _ = parse_condition(condition)
    devices: set[str] = set().union(*world_topics.values()) if world_topics else set()
    membership: dict[str, set[str]] = {}
    for topic, tokens in world_topics.items():
        for token in tokens:
            membership.setdefault(token, set()).add(topic)
    return {d for d in devices if predicate(membership.get(d, set()))}


def _auth_failed(request: web.Request) -> web.Response | None:
    world = request.app[FCM_KEY]
    if world.oauth.check_bearer(request.headers.get("Authorization")) is None:
        return google_error(401, "Request had invalid authentication credentials.")
    return None


async def create_subscription(request: web.Request) -> web.Response:
    if (failed := _auth_failed(request)) is not None:
        return failed
    world = request.app[FCM_KEY]
    token = request.match_info["token"]
    topic = request.query.get("topic_name") or request.query.get("topicName") or ""
    if not TOPIC_NAME.match(topic):
        return google_error(400, "Invalid topic name.", fcm_code="INVALID_ARGUMENT")
    if world.token_is_malformed(token) or world.token_is_unregistered(token):
        return google_error(404, "Requested entity was not found.", fcm_code="UNREGISTERED")
    if token in world.topics.get(topic, set()):
        return google_error(409, "Subscription already exists.")
    world.subscribe(topic, [token])
    request.app[STATE_KEY].counters.add("subscribed", token)
    project = request.match_info["project"]
    return web.json_response(
        {
            "name": f"projects/{project}/registrations/{token}/topicSubscriptions/{topic}",
            "topicName": topic,
            "createTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    )


async def delete_subscription(request: web.Request) -> web.Response:
    if (failed := _auth_failed(request)) is not None:
        return failed
    world = request.app[FCM_KEY]
    token, topic = request.match_info["token"], request.match_info["topic"]
    allow_missing = request.query.get("allow_missing", request.query.get("allowMissing"))
    if token not in world.topics.get(topic, set()) and allow_missing != "true":
        return google_error(404, "Requested entity was not found.")
    world.unsubscribe(topic, [token])
    return web.json_response({})


async def list_subscriptions(request: web.Request) -> web.Response:
    if (failed := _auth_failed(request)) is not None:
        return failed
    world = request.app[FCM_KEY]
    token, project = request.match_info["token"], request.match_info["project"]
    base = f"projects/{project}/registrations/{token}/topicSubscriptions"
    items = [{"name": f"{base}/{t}", "topicName": t} for t in sorted(world.topics_of(token))]
    return web.json_response({"topicSubscriptions": items})


async def iid_batch(request: web.Request) -> web.Response:
    if _auth_failed(request) is not None:
        return web.json_response({"error": "Unauthorized"}, status=401)
    world = request.app[FCM_KEY]
    body = await request.json()
    target = str(body.get("to", ""))
    tokens = body.get("registration_tokens")
    topic = target.removeprefix("/topics/")
    if not target.startswith("/topics/") or not TOPIC_NAME.match(topic):
        return web.json_response({"error": "InvalidTopicName"}, status=400)
    if not isinstance(tokens, list) or not tokens or len(tokens) > 1000:
        return web.json_response({"error": "InvalidParameters"}, status=400)
    results: list[dict[str, str]] = []
    subscribe = request.match_info["op"] == "batchAdd"
    for token in tokens:
        if not isinstance(token, str) or world.token_is_malformed(token):
            results.append({"error": "INVALID_ARGUMENT"})
        elif world.token_is_unregistered(token):
            results.append({"error": "NOT_FOUND"})
        else:
            (world.subscribe if subscribe else world.unsubscribe)(topic, [token])
            results.append({})
    return web.json_response({"results": results})


def add_topic_routes(app: web.Application) -> None:
    base = "/v1/projects/{project}/registrations/{token}/topicSubscriptions"
    app.router.add_post(base, create_subscription)
    app.router.add_get(base, list_subscriptions)
    app.router.add_delete(base + "/{topic}", delete_subscription)
    app.router.add_post("/iid/v1:{op:batchAdd|batchRemove}", iid_batch)
