"""The store's clock: every timestamp it keeps is timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Timezone-aware UTC now; every timestamp the store keeps is aware UTC."""
    return datetime.now(timezone.utc)
