"""The broadcasts area's one route table (filled by the api_* modules, imported by api.py)."""

from __future__ import annotations

from notify.web.api import ApiRoutes

routes = ApiRoutes("broadcasts")
