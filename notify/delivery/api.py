"""HTTP API of the delivery area."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("delivery")
