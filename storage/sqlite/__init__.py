"""SQLite backend: the embedded default store, one module per aggregate."""

from storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
