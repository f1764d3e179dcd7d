"""The ledger's update-in-place record, on both backends: ``last_updated_run`` says which run
last wrote a post, so a retry of that run never updates it twice."""

from __future__ import annotations

import pytest

from storage.base import LedgerEntry, NotFoundError, Store
from tests.storage.test_contract import entry, make_site, make_user


def test_record_update_keeps_the_entry_published_and_names_the_run(store: Store) -> None:
    site = make_site(store, make_user(store))
    uid = site.user_id
    first, _ = store.reserve_post(entry(uid, site.id, "aapl-stock-analysis", run_id="r1",
                                        last_updated_run="r1"))
    assert first.last_updated_run == "r1"
    store.complete_post(uid, site.id, "aapl-stock-analysis", post_id="7", post_url="u1",
                        title="one")
    updated = store.record_update(uid, site.id, "aapl-stock-analysis", run_id="r2",
                                  post_id="7", post_url="u2", title="two")
    assert (updated.status, updated.run_id, updated.last_updated_run, updated.post_url,
            updated.title) == ("published", "r1", "r2", "u2", "two")
    assert store.get_post(uid, site.id, "aapl-stock-analysis") == updated
    with pytest.raises(NotFoundError):
        store.record_update(uid, site.id, "missing", run_id="r2", post_id="1", post_url="u")


def test_entries_written_before_the_field_read_as_never_updated(store: Store) -> None:
    site = make_site(store, make_user(store))
    stored, _ = store.reserve_post(entry(site.user_id, site.id, "old"))
    assert isinstance(stored, LedgerEntry) and stored.last_updated_run == ""
