"""The API's request and answer shapes as pydantic models, one module per area, and the
operation each route is (``OPERATIONS``: ``(endpoint, METHOD) -> Operation``). portal/openapi.py
walks the app's URL map and builds the OpenAPI document from these; a route of ``/api/`` with no
operation here is missing from the document, and tests/accounts/test_openapi.py says so.
"""

from __future__ import annotations

from portal.api_models import account, campaigns, notifications, runs, sites, sources
from portal.api_models.common import Operation

OPERATIONS: dict[tuple[str, str], Operation] = {
    **account.OPERATIONS, **campaigns.OPERATIONS, **runs.OPERATIONS, **sites.OPERATIONS,
    **sources.OPERATIONS, **notifications.OPERATIONS,
}

__all__ = ["OPERATIONS", "Operation"]
