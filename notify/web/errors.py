"""One JSON error shape for every failure, and the middleware that produces it.

    {"error": {"code": "invalid_input", "message": "...", "fields": {"ward_code": "..."}}}

No traceback ever reaches a client: unexpected exceptions are logged and answered with a
generic 500 body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web
from pydantic import ValidationError

from notify.errors import HubError, InvalidInput

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(
    code: str, message: str, fields: Mapping[str, str] | None = None
) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def error_response(
    status: int, code: str, message: str, fields: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message, fields), status=status)


def fields_from_validation(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """pydantic errors → {"children.0.birth_month": "Input should be less than or equal to 12"}."""
    fields: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        key = f"{prefix}{loc}" if prefix else loc
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        fields.setdefault(key, msg)
    return fields


def invalid_from_validation(exc: ValidationError, prefix: str = "") -> InvalidInput:
    return InvalidInput(
        "入力内容に誤りがあります / invalid input", fields=fields_from_validation(exc, prefix)
    )


NUL_REFUSED = "NUL 文字は使えません / NUL characters are not allowed"


def refuse_nul(values: object, where: str = "body") -> None:
    """InvalidInput naming the first string (or key) in `values` that holds a NUL character.

    PostgreSQL cannot store U+0000 in text and answers an error, so input carrying one is
    refused at the door, with its place, instead of failing halfway through a request."""
    place = _nul_place(values, "")
    if place is not None:
        raise InvalidInput(NUL_REFUSED, fields={place or where: NUL_REFUSED})


def _nul_place(value: object, place: str) -> str | None:
    # A loop, not recursion: json.loads accepts nesting nearly as deep as the recursion
    # limit, and this runs some frames below a request handler.
    todo: list[tuple[object, str]] = [(value, place)]
    while todo:
        value, place = todo.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return place
            continue
        if isinstance(value, Mapping):
            if any(isinstance(key, str) and "\x00" in key for key in value):
                return place
            items: Iterable[tuple[object, object]] = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            continue
        inner = [(item, f"{place}.{key}" if place else str(key)) for key, item in items]
        todo.extend(reversed(inner))  # depth first, in order: the first NUL is the one named
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.fields)
        response.headers.update(getattr(exc, "headers", {}))  # Retry-After on a 429
        return response
    except ValidationError as exc:
        err = invalid_from_validation(exc)
        return error_response(err.status, err.code, err.message, err.fields)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type != "text/plain":
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error"
        )
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "内部エラー / internal error")
