"""The Store contract for accounts: profile changes, password changes that end sessions, API
tokens found by hash, and deleting a user with everything they own. Both backends."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from storage.base import (
    ApiToken,
    Campaign,
    ConflictError,
    DuplicateError,
    Fire,
    LedgerEntry,
    NewItem,
    NotFoundError,
    Run,
    Store,
)
from tests.storage.test_contract import assert_aware_utc, make_site, make_user, race

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_token(store: Store, user_id: str, name: str = "ci", secret: str = "tz_a") -> ApiToken:
    return store.create_token(ApiToken(id="", user_id=user_id, name=name,
                                       token_sha256=sha(secret)))


# profile and sessions -----------------------------------------------------------------------

def test_new_user_has_no_zone_and_session_version_zero(store: Store) -> None:
    user = store.get_user(make_user(store))
    assert user is not None
    assert (user.timezone, user.session_version) == ("", 0)


def test_update_user_sets_profile_fields_only(store: Store) -> None:
    uid = make_user(store)
    user = store.update_user(uid, {"display_name": "Ann", "timezone": "Europe/Paris"})
    assert (user.display_name, user.timezone) == ("Ann", "Europe/Paris")
    again = store.get_user(uid)
    assert again is not None and (again.display_name, again.timezone) == ("Ann", "Europe/Paris")
    for bad in ({"password_hash": "x"}, {"session_version": 9}, {"email": "b@example.com"},
                {"timezone": 3}):
        with pytest.raises(ValueError):
            store.update_user(uid, bad)
    unchanged = store.get_user(uid)
    assert unchanged is not None and unchanged.password_hash == "hash"
    with pytest.raises(NotFoundError):
        store.update_user("nobody", {"display_name": "x"})


def test_change_password_bumps_the_session_version(store: Store) -> None:
    uid = make_user(store)
    user = store.change_password(uid, "hash-2")
    assert (user.password_hash, user.session_version) == ("hash-2", 1)
    stored = store.get_user(uid)
    assert stored is not None and (stored.password_hash, stored.session_version) == ("hash-2", 1)
    assert store.end_sessions(uid).session_version == 2
    with pytest.raises(NotFoundError):
        store.change_password("nobody", "h")
    with pytest.raises(NotFoundError):
        store.end_sessions("nobody")


def test_change_password_with_expected_hash_is_a_compare_and_set(store: Store) -> None:
    uid = make_user(store)
    with pytest.raises(ConflictError):
        store.change_password(uid, "new", expected_hash="not-the-hash")
    stored = store.get_user(uid)
    assert stored is not None and (stored.password_hash, stored.session_version) == ("hash", 0)
    results = race(4, lambda i: store.change_password(uid, f"new-{i}", expected_hash="hash"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if r not in winners)
    final = store.get_user(uid)
    assert final is not None and final.session_version == 1
    assert final.password_hash == winners[0].password_hash


# tokens -------------------------------------------------------------------------------------

def test_token_lifecycle(store: Store) -> None:
    uid = make_user(store)
    first = make_token(store, uid, "ci", "tz_one")
    second = make_token(store, uid, "laptop", "tz_two")
    assert first.id and first.id != second.id
    assert [t.name for t in store.list_tokens(uid)] == ["ci", "laptop"]
    found = store.get_token_by_hash(sha("tz_one"))
    assert found is not None and (found.id, found.user_id, found.name) == (first.id, uid, "ci")
    assert found.last_used_at is None
    assert_aware_utc(found.created_at)
    store.touch_token(uid, first.id, T0)
    used = store.get_token_by_hash(sha("tz_one"))
    assert used is not None and used.last_used_at == T0
    store.delete_token(uid, first.id)
    assert store.get_token_by_hash(sha("tz_one")) is None
    assert [t.id for t in store.list_tokens(uid)] == [second.id]
    store.touch_token(uid, first.id, T0)          # revoked meanwhile: nothing happens
    assert store.get_token_by_hash(sha("tz_one")) is None
    with pytest.raises(NotFoundError):
        store.delete_token(uid, first.id)


def test_tokens_are_isolated_between_users(store: Store) -> None:
    ann, bob = make_user(store, "ann@example.com"), make_user(store, "bob@example.com")
    token = make_token(store, ann, "ci", "tz_ann")
    assert store.list_tokens(bob) == []
    with pytest.raises(NotFoundError):
        store.delete_token(bob, token.id)
    store.touch_token(bob, token.id, T0)
    kept = store.get_token_by_hash(sha("tz_ann"))
    assert kept is not None and kept.last_used_at is None and kept.user_id == ann


def test_token_hash_is_unique_and_user_must_exist(store: Store) -> None:
    uid = make_user(store)
    make_token(store, uid, "ci", "tz_same")
    with pytest.raises(DuplicateError):
        make_token(store, uid, "again", "tz_same")
    with pytest.raises(NotFoundError):
        make_token(store, "nobody", "ci", "tz_other")
    assert store.get_token_by_hash(sha("tz_other")) is None


# deleting a user ----------------------------------------------------------------------------

def _fill(store: Store, uid: str, tag: str) -> dict[str, str]:
    """One of everything a user can own."""
    site = make_site(store, uid, f"{tag} blog")
    store.reserve_post(LedgerEntry(user_id=uid, site_id=site.id, slug=f"{tag}-post",
                                   item_key="k", kind="stock", run_id="r", day="2026-11-25"))
    run = store.create_run(
        Run(id="", user_id=uid, kind="stock", site_id=site.id),
        [NewItem(key="a", input="A"), NewItem(key="b", input="B")])
    store.append_event(run.id, {"stage": "processing"})
    campaign = store.create_campaign(Campaign(id="", user_id=uid, name=f"{tag} daily",
                                              kind="stock", site_id=site.id, per_run=1,
                                              next_fire_at=T0))
    fire_id = f"{campaign.id}:{T0.isoformat()}"
    store.fire_campaign(campaign.id, expected_revision=campaign.revision,
                        fires=[Fire(id=fire_id, campaign_id=campaign.id, user_id=uid,
                                    scheduled_for=T0, outcome="skipped", reason="test")],
                        changes={})
    token = make_token(store, uid, "ci", f"tz_{tag}")
    store.update_user_settings(uid, {"sports_feeds": [{"name": "x", "url": "http://x"}]})
    return {"site": site.id, "run": run.id, "campaign": campaign.id, "token": token.id}


def test_delete_user_removes_everything_they_own_and_nothing_else(store: Store) -> None:
    ann = make_user(store, "ann@example.com")
    bob = make_user(store, "bob@example.com")
    owned = _fill(store, ann, "ann")
    kept = _fill(store, bob, "bob")
    store.delete_user(ann)

    assert store.get_user(ann) is None
    assert store.get_user_by_email("ann@example.com") is None
    assert store.list_sites(ann) == []
    assert store.get_site(ann, owned["site"]) is None
    assert store.list_posts(ann) == []
    assert store.get_run(owned["run"]) is None
    assert store.list_items(owned["run"]) == []
    assert store.list_events(owned["run"]) == []
    assert store.list_runs(ann) == []
    assert store.get_campaign(None, owned["campaign"]) is None
    assert store.list_fires(owned["campaign"]) == []
    assert store.list_tokens(ann) == []
    assert store.get_token_by_hash(sha("tz_ann")) is None

    assert store.get_user(bob) is not None
    assert [s.id for s in store.list_sites(bob)] == [kept["site"]]
    assert len(store.list_posts(bob)) == 1
    assert store.get_run(kept["run"]) is not None
    assert len(store.list_items(kept["run"])) == 2
    assert len(store.list_events(kept["run"])) == 1
    assert store.get_campaign(bob, kept["campaign"]) is not None
    assert len(store.list_fires(kept["campaign"])) == 1
    assert store.get_token_by_hash(sha("tz_bob")) is not None

    # The address is free again: a new account can take it.
    again = store.create_user("ann@example.com", "hash")
    assert again.id != ann and store.list_sites(again.id) == []


def test_delete_user_that_does_not_exist(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.delete_user("nobody")
