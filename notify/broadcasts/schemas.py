"""Request and response bodies of the broadcasts API (they make its OpenAPI schemas too)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from notify.compose.content import Content
from notify.web.api import MAX_ID
from segments.rules import EVERYONE, Rule

ChannelName = Literal["line", "fcm", "email"]
Priority = Literal["normal", "emergency"]
Policy = Literal["all", "preferred"]
Status = Literal[
    "draft",
    "submitted",
    "approved",
    "scheduled",
    "sending",
    "paused",
    "completed",
    "cancelled",
    "failed",
]


MAX_VERSION = 2**31 - 1  # broadcasts.version is an INTEGER column


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BroadcastIn(_In):
    title: str = Field(min_length=1, max_length=200)
    priority: Priority = "normal"
    topic: str | None = Field(default=None, max_length=32)
    content: Content
    segment: Rule = EVERYONE
    channels: list[ChannelName] = Field(min_length=1, max_length=3)
    channel_policy: Policy = "all"
    send_at: AwareDatetime | None = None  # wished-for time; fixed when scheduling


class BroadcastPatch(_In):
    version: int = Field(
        ge=1, le=MAX_VERSION, description="the version being edited (409 when stale)"
    )
    title: str | None = Field(default=None, min_length=1, max_length=200)
    priority: Priority | None = None
    topic: str | None = Field(default=None, max_length=32)
    content: Content | None = None
    segment: Rule | None = None
    channels: list[ChannelName] | None = Field(default=None, min_length=1, max_length=3)
    channel_policy: Policy | None = None
    send_at: AwareDatetime | None = None


class BroadcastOut(BaseModel):
    id: int
    title: str
    status: Status
    priority: Priority
    topic: str | None
    content: dict[str, Any]
    segment: dict[str, Any]
    segment_description: str
    channels: list[str]
    channel_policy: Policy
    send_at: dt.datetime | None
    version: int
    created_by: int | None
    submitted_by: int | None
    approved_by: int | None
    review_comment: str | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    approved_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class BroadcastListItem(BaseModel):
    id: int
    title: str
    status: Status
    priority: Priority
    topic: str | None
    channels: list[str]
    send_at: dt.datetime | None
    version: int
    created_by: int | None
    updated_at: dt.datetime


class BroadcastList(BaseModel):
    items: list[BroadcastListItem]
    total: int


class ListQuery(_In):
    status: Status | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_ID)


class VersionIn(_In):
    version: int = Field(ge=1, le=MAX_VERSION)


class ApproveIn(VersionIn):
    comment: str | None = Field(default=None, max_length=2000)


class RejectIn(VersionIn):
    comment: str = Field(min_length=1, max_length=2000)


class ScheduleIn(VersionIn):
    send_at: AwareDatetime | None = Field(default=None, description="omit to send now")


class CancelIn(_In):
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    reason: str | None = Field(default=None, max_length=2000)


class ReachIn(_In):
    segment: Rule = EVERYONE
    channels: list[ChannelName] = Field(min_length=1, max_length=3)
    channel_policy: Policy = "all"
    topic: str | None = Field(default=None, max_length=32)
    priority: Priority = "normal"
    send_at: AwareDatetime | None = None


class ReachOut(BaseModel):
    send_date: dt.date
    total: int = Field(description="active residents the segment selects")
    reachable: int = Field(description="of those, reachable on the chosen channels")
    by_channel: dict[str, int] = Field(description="residents per channel (policy-aware)")
    endpoints: dict[str, int] = Field(description="messages per channel (policy 'all')")
    by_ward: dict[str, int] = Field(description="reachable residents per ward code")


class PreviewIn(_In):
    language: str = Field(default="ja", pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    resident_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="default: first in the segment"
    )
    ward_code: str | None = Field(default=None, pattern=r"^\d{6}$")


class ContentPreviewIn(PreviewIn):
    title: str = Field(default="", max_length=200)
    priority: Priority = "normal"
    content: Content
    channels: list[ChannelName] = Field(min_length=1, max_length=3)


class SampleResident(BaseModel):
    resident_id: int | None
    ward_code: str | None
    language: str


class LinePreview(BaseModel):
    messages: list[dict[str, Any]]


class PushPreview(BaseModel):
    title: str
    body: str
    data: dict[str, str]
    emergency: bool


class EmailPreview(BaseModel):
    subject: str
    text: str
    html: str | None


class PreviewOut(BaseModel):
    sample: SampleResident
    line: LinePreview | None = None
    fcm: PushPreview | None = None
    email: EmailPreview | None = None
    problems: dict[str, str] = Field(default_factory=dict)


class HistoryEntry(BaseModel):
    at: dt.datetime
    actor_type: str
    actor_id: str | None
    action: str
    detail: dict[str, Any]


class TestEndpointIn(_In):
    channel: ChannelName
    address: str = Field(min_length=1, max_length=512)
    language: str = Field(default="ja", pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    label: str = Field(default="", max_length=64)


class TestEndpointOut(BaseModel):
    id: int
    channel: str
    address: str
    language: str
    label: str
    created_at: dt.datetime


class TestSendResult(BaseModel):
    test_endpoint_id: int
    channel: str
    outcome: Literal["sent", "permanent", "transient", "error"]
    detail: str | None = None


class TestSendOut(BaseModel):
    results: list[TestSendResult]


class PreparedOut(BaseModel):
    key: str
    name: dict[str, str]
    priority: Priority
    topic: str | None
    channels: list[str]
    params: list[dict[str, Any]]
    content: dict[str, Any]


class InstantiateIn(_In):
    params: dict[str, str] = Field(default_factory=dict, max_length=20)
