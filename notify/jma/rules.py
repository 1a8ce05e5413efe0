"""Decide what one telegram means for one city: a pure function, no I/O.

`evaluate` answers switch / propose / withdraw / propose_return_to_normal / ignore, with the
affected wards, the prepared emergency template and a reason in Japanese and English. The
caller (web layer, worker) acts on it and keeps the history (which EventIDs started what).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

from notify.jma.config import CityAreas, Rule, RuleAction
from notify.jma.telegram import (
    AreaScope,
    EntryState,
    InfoType,
    Telegram,
    TelegramKind,
    WarningEntry,
)

_JST = ZoneInfo("Asia/Tokyo")


class DecisionAction(StrEnum):
    SWITCH = "switch"
    PROPOSE = "propose"
    WITHDRAW = "withdraw"
    PROPOSE_RETURN_TO_NORMAL = "propose_return_to_normal"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Decision:
    action: DecisionAction
    reason_ja: str
    reason_en: str
    event_key: str  # Telegram.event_key: what a later 取消 will name
    ward_codes: tuple[str, ...] = ()
    template_key: str | None = None
    rule_keys: tuple[str, ...] = ()
    cancels_event_key: str | None = None  # WITHDRAW: the sequence whose effects to undo
    cancels_event_id: str | None = None
    fresh: bool = True  # False when everything that matched was already in force (継続)


@dataclass
class _Match:
    rule: Rule
    wards: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # "川崎市 (1413000)" for the reason
    fresh: bool = False
    region_only: bool = False


def evaluate(
    telegram: Telegram,
    city: CityAreas,
    rules: Sequence[Rule],
    *,
    auto_switch_allowed: bool = True,
) -> Decision:
    """What `telegram` means for `city` under `rules` (auto_switch becomes propose when
    `auto_switch_allowed` is False, i.e. settings.jma_auto_switch is off)."""
    key = telegram.event_key
    when = telegram.report_datetime.astimezone(_JST).strftime("%Y-%m-%d %H:%M")
    source_ja = f"気象庁「{telegram.head_title or telegram.control_title}」{when}"
    source_en = f"JMA {telegram.data_type or 'telegram'} of {when} JST"
    if telegram.kind is TelegramKind.UNSUPPORTED:
        return _ignore(
            key,
            f"{source_ja}：対象外の種類の電文です。",
            f"{source_en}: a telegram kind the rules do not use.",
        )
    if not telegram.is_real:
        return _ignore(
            key,
            f"{source_ja}：{telegram.status.value}電文のため切替は行いません。",
            f"{source_en}: a {'drill' if telegram.status.value == '訓練' else 'test'} "
            "telegram never switches.",
        )
    if telegram.info_type is InfoType.CANCELLED:
        return Decision(
            DecisionAction.WITHDRAW,
            f"{source_ja}：先の電文が取り消されました。それによる提案・切替を取り下げます。",
            f"{source_en}: JMA cancelled its earlier telegram; withdrawing what it started.",
            key,
            cancels_event_key=key,
            cancels_event_id=telegram.event_id or None,
        )
    ward_order = {w: i for i, w in enumerate(city.ward_codes)}
    triggered, lifted, seen_city = _matches(telegram, city, rules)
    if triggered:
        severe = [
            m for m in triggered if m.rule.action is RuleAction.AUTO_SWITCH and not m.region_only
        ]
        auto = auto_switch_allowed and bool(severe)
        lead = (severe or triggered)[0]
        wards = _ordered((w for m in triggered for w in m.wards), ward_order)
        what_ja = "、".join(f"{m.rule.ja}（{'・'.join(m.places)}）" for m in triggered)
        what_en = "; ".join(f"{m.rule.en} ({', '.join(m.places)})" for m in triggered)
        if auto:
            tail_ja, tail_en = "災害モードに自動で切り替えます。", "Switching to disaster mode now."
        else:
            tail_ja = "災害モードへの切替を提案します。"
            tail_en = "Proposing the switch to disaster mode."
            if severe:
                tail_ja += "（自動切替は設定で無効です）"
                tail_en += " (automatic switching is turned off in the settings)"
            if any(m.region_only for m in triggered):
                tail_ja += "（地域単位の情報のため、市の震度は続報で確認してください）"
                tail_en += " (region-level report: confirm the city's intensity in the follow-up)"
        return Decision(
            DecisionAction.SWITCH if auto else DecisionAction.PROPOSE,
            f"{source_ja}：{what_ja}。{tail_ja}",
            f"{source_en}: {what_en}. {tail_en}",
            key,
            ward_codes=wards,
            template_key=lead.rule.template,
            rule_keys=tuple(m.rule.key for m in triggered),
            fresh=any(m.fresh for m in triggered),
        )
    if telegram.info_type is InfoType.CORRECTED:
        # a correction replaces the earlier content: what it no longer supports goes
        return Decision(
            DecisionAction.WITHDRAW,
            f"{source_ja}：訂正報により{city.ja}は切替の条件に該当しなくなりました。"
            "先の電文による提案・切替を取り下げます。",
            f"{source_en}: after JMA's correction nothing in {city.en} meets a switching rule; "
            "withdrawing what the corrected telegram started.",
            key,
            cancels_event_key=key,
            cancels_event_id=telegram.event_id or None,
        )
    if lifted:
        what_ja = "、".join(f"{m.rule.ja}（{'・'.join(m.places)}）" for m in lifted)
        what_en = "; ".join(f"{m.rule.en} ({', '.join(m.places)})" for m in lifted)
        return Decision(
            DecisionAction.PROPOSE_RETURN_TO_NORMAL,
            f"{source_ja}：{what_ja}が解除されました。通常モードへの復帰を提案します。",
            f"{source_en}: {what_en} lifted. Proposing the return to normal mode.",
            key,
            ward_codes=_ordered((w for m in lifted for w in m.wards), ward_order),
            rule_keys=tuple(m.rule.key for m in lifted),
        )
    if not seen_city:
        return _ignore(
            key,
            f"{source_ja}：{city.ja}の区域は含まれていません。",
            f"{source_en}: no area of {city.en} is concerned.",
        )
    return _ignore(
        key,
        f"{source_ja}：{city.ja}の区域は切替の条件に該当しません。",
        f"{source_en}: nothing in {city.en} meets a switching rule.",
    )


def _matches(
    telegram: Telegram, city: CityAreas, rules: Sequence[Rule]
) -> tuple[list[_Match], list[_Match], bool]:
    triggered: list[_Match] = []
    lifted: list[_Match] = []
    seen_city = False
    for rule in (r for r in rules if r.telegram is telegram.kind):
        hit, gone = _Match(rule), _Match(rule)
        if telegram.kind is TelegramKind.SEISMIC:
            seen_city |= _seismic(telegram, city, rule, hit)
        else:
            for area in telegram.warning_areas:
                wards = city.area_wards(area.code) if area.scope is AreaScope.CITY else ()
                if not wards:
                    continue
                seen_city = True
                place = f"{area.name} ({area.code})"
                for entry in area.entries:
                    if entry.code in rule.kind_codes and entry.state.in_force:
                        _add(hit, wards, place)
                        hit.fresh |= entry.state is not EntryState.CONTINUING
                    elif _lifts(entry, rule):
                        _add(gone, wards, place)
        if hit.wards:
            triggered.append(hit)
        elif gone.wards:
            lifted.append(gone)
    return triggered, lifted, seen_city


def _seismic(telegram: Telegram, city: CityAreas, rule: Rule, hit: _Match) -> bool:
    """City-level intensities decide; regions only speak when the telegram names no city
    at all (震度速報), and then at most as a proposal."""
    assert rule.min_intensity is not None
    has_cities = any(a.scope is AreaScope.CITY for a in telegram.seismic_areas)
    seen = False
    for area in telegram.seismic_areas:
        if area.scope is AreaScope.CITY:
            wards = city.area_wards(area.code)
        elif not has_cities and rule.region_action == "propose":
            wards = city.region_wards(area.code)
        else:
            continue
        if not wards:
            continue
        seen = True
        if area.max_intensity is not None and area.max_intensity.at_least(rule.min_intensity):
            unreported = "以上未入電" if area.unreported else ""
            _add(hit, wards, f"{area.name} ({area.code}) {area.max_intensity.label_ja}{unreported}")
            hit.fresh = True
            hit.region_only = area.scope is AreaScope.REGION
    return seen


def _lifts(entry: WarningEntry, rule: Rule) -> bool:
    if entry.state is EntryState.CLEARED:
        return (
            entry.code in rule.kind_codes
            or entry.last_code in rule.kind_codes
            or entry.code in rule.lifted_by_codes
            or "*" in rule.lifted_by_codes
        )
    if entry.state is EntryState.TRANSITION and entry.code not in rule.kind_codes:
        if entry.last_code is not None:
            return entry.last_code in rule.kind_codes
        return entry.code in rule.lifted_by_codes and entry.status.startswith(
            rule.lifted_by_status_prefix
        )
    return False


def _add(match: _Match, wards: Iterable[str], place: str) -> None:
    match.wards.extend(w for w in wards if w not in match.wards)
    if place not in match.places:
        match.places.append(place)


def _ordered(wards: Iterable[str], order: dict[str, int]) -> tuple[str, ...]:
    return tuple(sorted(set(wards), key=lambda w: order.get(w, len(order))))


def _ignore(key: str, reason_ja: str, reason_en: str) -> Decision:
    return Decision(DecisionAction.IGNORE, reason_ja, reason_en, key)
