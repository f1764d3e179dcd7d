"""Persistence: the Store protocol (``storage.base``) and its SQLite and Firestore backends."""

from storage.base import (
    ConflictError,
    DailyLimitReached,
    DuplicateError,
    NotFoundError,
    Store,
    StoreError,
)

__all__ = ["ConflictError", "DailyLimitReached", "DuplicateError", "NotFoundError", "Store",
           "StoreError", "open_store"]


def open_store(url: str) -> Store:
    """``sqlite:///path`` or ``firestore://project`` -> a Store."""
    if url.startswith("sqlite:///"):
        from storage.sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///"):])
    if url.startswith("firestore://"):
        from storage.firestore import FirestoreStore

        return FirestoreStore(project=url[len("firestore://"):])
    raise ValueError(f"unknown store URL {url!r}: use sqlite:///<path> or firestore://<project>")
