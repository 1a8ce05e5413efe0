"""How every command of `python -m notify` fails: a line on stderr and an exit code
(sysexits.h), never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from notify.errors import HubError

EX_USAGE_INPUT = 2  # bad input (what argparse uses too)
EX_UNAVAILABLE = 69  # the database or Redis cannot be reached
EX_IOERR = 74  # a file could not be read or written
EX_INTERRUPTED = 130


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
    except (ConnectionError, TimeoutError, DBAPIError) as exc:
        # Refused, timed out or dropped (OSError subclasses), or the database's own refusal
        # of the connection (SQLAlchemy wraps the driver's).
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        print(f"error: 接続できません / a service is not reachable: {reason}", file=sys.stderr)
        return EX_UNAVAILABLE
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: 入出力エラー / I/O error{where}: {exc.strerror or exc}", file=sys.stderr)
        return EX_IOERR
