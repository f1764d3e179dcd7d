"""History tests: the storage ones run once per backend (the ``store`` fixture of
tests/storage), the portal ones on the testing app."""

from __future__ import annotations

from tests.storage.conftest import store  # noqa: F401 - the parametrized fixture
