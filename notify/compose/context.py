"""The variables a staff template can use, built the same way for previews and for sending.

    {{ city.name }}            川崎市 (English name for non-Japanese readers)
    {{ resident.ward }}        the resident's ward name (empty when unknown), ward_code
    {{ resident.language }}
    {{ broadcast.title }}      {{ broadcast.send_date }} (2025年4月15日 / 15 April 2025)
    {{ broadcast.emergency }}  true for emergency broadcasts

No names, addresses or other personal data: the registry keeps none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from notify.city import CityConfig


def message_context(
    city: CityConfig,
    *,
    language: str = "ja",
    ward_code: str | None = None,
    broadcast_id: int | None = None,
    title: str = "",
    priority: str = "normal",
    send_at: dt.datetime | None = None,
) -> dict[str, Any]:
    japanese = language.split("-")[0] == "ja"
    ward = city.ward(ward_code) if ward_code else None
    local = (send_at or dt.datetime.now(dt.UTC)).astimezone(city.tz)
    if japanese:
        send_date = f"{local.year}年{local.month}月{local.day}日"
    else:
        send_date = f"{local.day} {local:%B} {local.year}"
    return {
        "city": {
            "name": city.city.name.ja if japanese else city.city.name.en,
            "name_ja": city.city.name.ja,
            "name_en": city.city.name.en,
        },
        "resident": {
            "language": language,
            "ward_code": ward.code if ward else "",
            "ward": (ward.ja if japanese else ward.en) if ward else "",
            "ward_ja": ward.ja if ward else "",
            "ward_en": ward.en if ward else "",
        },
        "broadcast": {
            "id": broadcast_id or 0,
            "title": title,
            "priority": priority,
            "emergency": priority == "emergency",
            "send_date": send_date,
            "send_time": f"{local:%H:%M}",
        },
    }
