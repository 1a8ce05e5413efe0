"""HTTP API of the registry area."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("registry")
