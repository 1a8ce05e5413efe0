"""HTTP API of the stats area."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("stats")
