"""arq jobs of the stats area (collected by worker.py).

`read_line_insight` runs every 10 minutes on whichever worker gets it (arq cron jobs carry
a per-run job id, so several workers do not run one slot twice) and spends what is left of
the shared hourly LINE statistics budget.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from arq import cron

from notify.stats.insight_poll import poll_line_insight


async def read_line_insight(ctx: dict[str, Any]) -> dict[str, Any]:
    report = await poll_line_insight(ctx["settings"], ctx["db"], ctx["redis"])
    return dataclasses.asdict(report)


FUNCTIONS: list[Any] = [read_line_insight]
CRON_JOBS: list[Any] = [
    cron(read_line_insight, minute=set(range(0, 60, 10)), unique=True, timeout=300),
]
