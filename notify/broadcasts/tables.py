"""Tables of the broadcasts area: staff members' own test endpoints.

A test send goes only to addresses a staff member registered for themselves (their own LINE
user id, app token or mailbox), never to residents, so checking a draft on a real phone cannot
leak it to the city.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notify.db import Base, UTCDateTime, utcnow
from notify.models import BigId
from segments import indexes as segment_indexes  # noqa: F401 - registers them on the metadata


class StaffTestEndpoint(Base):
    __tablename__ = "staff_test_endpoints"
    __table_args__ = (
        UniqueConstraint("staff_id", "channel", "address", name="uq_staff_test_endpoints_address"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(8))  # line / fcm / email
    address: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(8), default="ja")
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
