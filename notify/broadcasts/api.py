"""HTTP API of the broadcasts area."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("broadcasts")
