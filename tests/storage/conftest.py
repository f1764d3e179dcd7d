"""The ``store`` fixture: every contract test runs once per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.base import Store


@pytest.fixture(params=["sqlite", "firestore"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        from storage.sqlite import SQLiteStore

        sqlite_store = SQLiteStore(tmp_path / "db" / "tickzen.db")
        try:
            yield sqlite_store
        finally:
            sqlite_store.close()
    else:
        yield request.getfixturevalue("firestore_store")
