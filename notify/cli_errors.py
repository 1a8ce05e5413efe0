"""How every command (`python -m notify …`, `worker.py`, `server.py`) fails: a line on
stderr and an exit code (sysexits.h), never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError

from notify.errors import HubError

EX_USAGE_INPUT = 2  # bad input (what argparse uses too)
EX_UNAVAILABLE = 69  # the database or Redis cannot be reached
EX_IOERR = 74  # a file could not be read or written
EX_INTERRUPTED = 130

# Refused, timed out or dropped (OSError subclasses), the database's own refusal of the
# connection (SQLAlchemy wraps the driver's), or Redis's (not OSError subclasses).
_UNREACHABLE = (ConnectionError, TimeoutError, DBAPIError, RedisConnectionError, RedisTimeoutError)


def run_command(command: Callable[[], int | None]) -> int:
    try:
        return command() or 0
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for field, reason in exc.fields.items():
            print(f"  {field}: {reason}", file=sys.stderr)
        return EX_USAGE_INPUT
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except _UNREACHABLE as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        print(f"error: 接続できません / a service is not reachable: {reason}", file=sys.stderr)
        return EX_UNAVAILABLE
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: 入出力エラー / I/O error{where}: {exc.strerror or exc}", file=sys.stderr)
        return EX_IOERR
