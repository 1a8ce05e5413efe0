"""HTTP API of the mode area."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("mode")
