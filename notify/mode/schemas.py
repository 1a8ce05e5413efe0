"""Request and response models of the mode API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ModeName = Literal["normal", "disaster"]
Channel = Literal["line", "fcm", "email"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank / 空欄にできません")
    return value.strip()


class EmergencyIn(_In):
    template: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    params: dict[str, str] = Field(default_factory=dict, max_length=20)
    wards: list[str] | None = Field(default=None, max_length=50)  # None: the whole city
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=3)
    title: str | None = Field(default=None, min_length=1, max_length=200)


class SwitchIn(_In):
    mode: ModeName
    reason: str = Field(min_length=1, max_length=1000)
    emergency: EmergencyIn | None = None  # sent right after the switch is accepted

    _reason = field_validator("reason")(_not_blank)


class AcceptIn(_In):
    reason: str | None = Field(default=None, max_length=1000)
    send_message: bool = True
    params: dict[str, str] = Field(default_factory=dict, max_length=20)
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=3)


class DismissIn(_In):
    note: str = Field(min_length=1, max_length=1000)

    _note = field_validator("note")(_not_blank)


class ProposalQuery(_In):
    status: Literal["pending", "accepted", "dismissed", "withdrawn", "superseded"] | None = None


class BatchOut(BaseModel):
    request_id: str | None
    phase: str
    sent_at: dt.datetime
    completed_at: dt.datetime | None


class RelinkOut(BaseModel):
    strategy: str | None = None  # batch / bulk
    phase: str | None = None  # pending / succeeded
    operations: int = 0
    pairs: list[list[str]] = []  # [from menu key, to menu key]
    fallback: str | None = None  # why bulk was used
    users_total: int | None = None
    users_checked: int | None = None
    users_moved: int | None = None
    batches: list[BatchOut] = []


class SwitchOut(BaseModel):
    id: int
    target_mode: ModeName
    from_mode: ModeName
    status: str
    reason: str
    by: str
    source: str
    requested_at: dt.datetime
    default_set_at: dt.datetime | None
    relink_done_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    steps: dict[str, Any]
    relink: RelinkOut


class BudgetOut(BaseModel):
    used_last_hour: int
    left: int
    next_free_at: dt.datetime | None


class StatusOut(BaseModel):
    mode: ModeName
    since: dt.datetime | None
    by: str | None
    reason: str | None
    switch: SwitchOut | None
    batch_budget: BudgetOut
    pending_proposals: int
    menus_synced: bool


class PublicModeOut(BaseModel):
    mode: ModeName
    since: dt.datetime | None


class SwitchAccepted(BaseModel):
    changed: bool  # False: the mode was already in force (and its switch finished)
    queued: bool
    switch: SwitchOut | None
    broadcast_id: int | None = None


class EmergencyOut(BaseModel):
    broadcast_id: int
    status: str
    priority: str
    send_at: dt.datetime | None


class MenuOut(BaseModel):
    key: str
    mode: ModeName
    entry: bool
    counterpart: str
    alias: str | None
    name: str
    rich_menu_id: str | None
    synced_at: dt.datetime | None


class SyncQueued(BaseModel):
    job_id: str


class ProposalOut(BaseModel):
    id: int
    kind: str
    status: str
    event_key: str
    reason_ja: str
    reason_en: str
    ward_codes: list[str]
    template_key: str | None
    template_params: dict[str, str]
    rule_keys: list[str]
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    note: str | None
    switch_id: int | None
    broadcast_id: int | None


class TelegramResultOut(BaseModel):
    telegram_id: int
    duplicate: bool
    data_type: str
    event_key: str
    action: str
    outcome: str
    reason_ja: str
    reason_en: str
    ward_codes: list[str]
    proposal_id: int | None
    switch_id: int | None
    broadcast_id: int | None


class IntakeOut(BaseModel):
    results: list[TelegramResultOut]
