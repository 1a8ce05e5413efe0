"""Small SQL helpers shared by the delivery modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, CursorResult, Executable, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

_BIGINT_ARRAY = ARRAY(BigInteger)  # one type object: its cache key is worked out once


def id_in(session: AsyncSession, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN (ids)`; on PostgreSQL `column = ANY(:array)`: one parameter instead of
    hundreds (SQLAlchemy renders each IN element in Python, a cost at a million rows)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=_BIGINT_ARRAY))
    return column.in_(list(ids))


def ids_param(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """`id_in` for a statement built once: the list is the bind parameter `name`."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=_BIGINT_ARRAY))
    return column.in_(bindparam(name, expanding=True))


def status_is(column: Any, value: str) -> ColumnElement[bool]:
    """`status = value` written so no index can serve it (`status || ''`).

    The hot updates find their rows by primary key (`id_in`); the status test only guards
    against overwriting a final status. Written plainly, PostgreSQL's statistics on `status`
    (usually stale mid-send: taken when every row was 'pending') once made it prefer a
    status index over the primary key, at seconds per batch; no index names `status` now
    (see `Delivery`), and this keeps any future one out of these statements."""
    return column.concat("") == value


async def execute_core(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Run a Core statement on the session's connection, inside its transaction. The hot
    path's statements (claim, load, record, release) run once or twice per batch and need
    none of the ORM's statement handling, which costs about a third more per statement.

    The hottest are built once, with bind parameters, and only executed per batch: building
    a statement and working out its cache key costs more than running it (loading a
    batch's 500 rows: 1.3 ms of client CPU built per call, 0.7 ms built once)."""
    return await (await session.connection()).execute(statement, params)
