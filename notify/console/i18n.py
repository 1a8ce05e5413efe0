"""Japanese first, English available: the console's language choice and bilingual text.

Templates write both languages inline (`t("配信一覧", "Broadcasts")`) so a page reads in one
file; core messages arrive as "日本語 / English" and `pick` shows the half the reader chose.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
LANG_COOKIE = "hub_lang"


def parse_lang(value: str | None) -> Lang:
    return "en" if value == "en" else "ja"


def pick(message: str, lang: Lang) -> str:
    """'日本語 / English' → the half in `lang` (the whole text when it is not bilingual)."""
    ja, sep, en = message.partition(" / ")
    if not sep:
        return message
    return en if lang == "en" else ja


STATUS_LABELS: dict[str, tuple[str, str]] = {
    "draft": ("下書き", "Draft"),
    "submitted": ("承認待ち", "Awaiting approval"),
    "approved": ("承認済み", "Approved"),
    "rejected": ("差し戻し", "Rejected"),
    "scheduled": ("配信予約済み", "Scheduled"),
    "sending": ("配信中", "Sending"),
    "paused": ("一時停止", "Paused"),
    "completed": ("配信完了", "Completed"),
    "cancelled": ("取り消し", "Cancelled"),
    "failed": ("失敗", "Failed"),
}

ROLE_LABELS: dict[str, tuple[str, str]] = {
    "pr": ("広報", "PR"),
    "approver": ("承認者", "Approver"),
    "disaster": ("防災", "Disaster"),
    "analyst": ("分析", "Analyst"),
    "admin": ("管理者", "Admin"),
}

MODE_LABELS: dict[str, tuple[str, str]] = {
    "normal": ("平常", "normal"),
    "disaster": ("災害", "disaster"),
}

SWITCH_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("開始待ち", "pending"),
    "running": ("実行中", "running"),
    "waiting": ("LINEの上限待ち", "waiting for LINE's limit"),
    "done": ("完了", "done"),
    "failed": ("失敗（再実行できます）", "failed (can be resumed)"),
    "superseded": ("次の切り替えで中止", "superseded"),
    "succeeded": ("成功", "succeeded"),
    "batch": ("一括処理", "batch"),
    "bulk": ("個別一括", "bulk"),
}

CHANNEL_LABELS: dict[str, tuple[str, str]] = {
    "line": ("LINE", "LINE"),
    "fcm": ("アプリ通知", "App push"),
    "push": ("アプリ通知", "App push"),
    "email": ("メール", "Email"),
}


def label(table: dict[str, tuple[str, str]], key: str, lang: Lang) -> str:
    pair = table.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]
