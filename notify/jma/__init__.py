"""JMA disaster-prevention XML telegrams: safe parsing, city area mapping, switch rules.

Pure code (no DB, no HTTP): `parse_telegram(bytes) -> Telegram`, `load_jma_config(path)`,
`evaluate(telegram, city, rules) -> Decision`, `parse_atom_feed(bytes)`.
"""

from notify.jma.config import AreaMapping, CityAreas, JmaConfig, Rule, RuleAction, load_jma_config
from notify.jma.feed import FeedEntry, parse_atom_feed
from notify.jma.parse import MAX_TELEGRAM_BYTES, parse_telegram
from notify.jma.rules import Decision, DecisionAction, evaluate
from notify.jma.telegram import (
    AreaScope,
    EntryState,
    InfoType,
    Intensity,
    SeismicArea,
    Telegram,
    TelegramKind,
    TelegramStatus,
    WarningArea,
    WarningEntry,
)

__all__ = [
    "MAX_TELEGRAM_BYTES",
    "AreaMapping",
    "AreaScope",
    "CityAreas",
    "Decision",
    "DecisionAction",
    "EntryState",
    "FeedEntry",
    "InfoType",
    "Intensity",
    "JmaConfig",
    "Rule",
    "RuleAction",
    "SeismicArea",
    "Telegram",
    "TelegramKind",
    "TelegramStatus",
    "WarningArea",
    "WarningEntry",
    "evaluate",
    "load_jma_config",
    "parse_atom_feed",
    "parse_telegram",
]
