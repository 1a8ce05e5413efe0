"""HTTP API of the broadcasts area: one route table, filled by the api_* modules.

api_drafts     list, create, read, edit, history, reach, previews
api_review     submit, approve, reject, withdraw, schedule, cancel
api_test_send  my test endpoints, test sends
api_prepared   prepared messages (定型文)
"""

from __future__ import annotations

from notify.broadcasts import api_drafts, api_prepared, api_review, api_test_send  # noqa: F401
from notify.broadcasts.routes import routes

__all__ = ["routes"]
