"""Persistence: the Store protocol (``storage.base``) and its SQLite and Firestore backends."""

from storage.base import (
    ConflictError,
    DailyLimitReached,
    DuplicateError,
    NotFoundError,
    Store,
    StoreError,
    open_store,
)

__all__ = ["ConflictError", "DailyLimitReached", "DuplicateError", "NotFoundError", "Store",
           "StoreError", "open_store"]
