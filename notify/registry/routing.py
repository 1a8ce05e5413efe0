"""The registry's one route table; the area's modules declare their endpoints on it."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("registry")
