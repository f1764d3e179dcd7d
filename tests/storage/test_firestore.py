"""What only the Firestore backend promises: its document layout, safety across instances,
and an emulator fixture that skips locally but fails under CI=true when the emulator is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import open_store
from storage.base import ConflictError, DailyLimitReached, NewItem, Run
from storage.firestore import FirestoreStore
from tests.storage.test_contract import entry, make_site, race
from tests.support.firestore_emulator import PROJECT, FirestoreEmulator

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = 4


@pytest.fixture
def instances(firestore_store: FirestoreStore) -> Iterator[list[FirestoreStore]]:
    """Separate stores, each with its own client, stand for separate portal instances: they
    share nothing but Firestore, so only its transactions keep them consistent."""
    others = [FirestoreStore(project=PROJECT) for _ in range(INSTANCES - 1)]
    try:
        yield [firestore_store, *others]
    finally:
        for store in others:
            store.close()


def new_run(store: FirestoreStore, n: int = 2) -> Run:
    return store.create_run(Run(id="", user_id="u", kind="stock", site_id="s"),
                            [NewItem(key=f"k{i}", input=f"K{i}") for i in range(n)])


def test_documents_follow_the_design_layout(firestore_store: FirestoreStore) -> None:
    store = firestore_store
    user = store.create_user("ann@example.com", "h")
    site = make_site(store, user.id)
    store.reserve_post(entry(user.id, site.id, "aapl-stock-analysis-2026-11-25"))
    store.complete_post(user.id, site.id, "aapl-stock-analysis-2026-11-25", post_id="9",
                        post_url="https://blog.example/aapl")
    run = new_run(store)
    store.append_event(run.id, {"stage": "processing"})

    db = store._client
    assert db.document("user_emails/ann@example.com").get().get("user_id") == user.id
    assert db.document(f"users/{user.id}").get().get("email") == "ann@example.com"
    assert db.document(f"users/{user.id}/sites/{site.id}").get().get("name") == "Blog"
    post = db.document(f"users/{user.id}/sites/{site.id}/posts/aapl-stock-analysis-2026-11-25"
                       ).get().to_dict()
    assert (post["status"], post["wordpressPostId"], post["post_url"]) == (
        "published", "9", "https://blog.example/aapl")
    assert post["publishedDate"] is not None
    assert db.document(f"runs/{run.id}").get().get("last_seq") == 1
    assert db.document(f"runs/{run.id}/items/000001").get().get("key") == "k1"
    assert db.document(f"runs/{run.id}/events/0000000001").get().get("seq") == 1


def test_campaign_documents_follow_the_design_layout(firestore_store: FirestoreStore) -> None:
    from tests.storage.test_contract_campaigns import T0, make_campaign, start

    store = firestore_store
    campaign = make_campaign(store, store.create_user("ann@example.com", "h").id)
    _, run = start(store, campaign, T0)
    db = store._client
    assert db.document(f"campaigns/{campaign.id}").get().get("revision") == 1
    fires = list(db.collection(f"campaigns/{campaign.id}/fires").stream())
    assert [(f.get("id"), f.get("outcome"), f.get("run_id")) for f in fires] == [
        (run.fire_id, "started", run.id)]
    assert db.document(f"runs/{run.id}").get().get("fire_id") == run.fire_id


def test_odd_slugs_and_ids_address_their_own_documents(firestore_store: FirestoreStore
                                                       ) -> None:
    store = firestore_store
    uid = store.create_user("odd/email@example.com", "h").id
    site = make_site(store, uid)
    slugs = ["a/b", "a%2Fb", ".", "..", "__x__", "a b"]
    for slug in slugs:
        assert store.reserve_post(entry(uid, site.id, slug))[1]
    assert sorted(p.slug for p in store.list_posts(uid)) == sorted(slugs)
    assert store.get_user_by_email("odd/email@example.com").id == uid
    assert store.get_site(uid, "../..") is None
    assert store.get_run("a/b") is None


def test_open_store_url_reaches_the_emulator(firestore_emulator: FirestoreEmulator) -> None:
    firestore_emulator.reset()
    store = open_store(f"firestore://{PROJECT}")
    try:
        assert isinstance(store, FirestoreStore)
        user = store.create_user("url@example.com", "h")
        assert store.get_user(user.id) == user
    finally:
        store.close()


def test_instances_racing_one_transition_have_one_winner(
        instances: list[FirestoreStore]) -> None:
    run = new_run(instances[0])
    results = race(INSTANCES, lambda i: instances[i].transition_run(
        run.id, ["queued"], "running", owner=f"inst-{i}"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) and r.current == "running"
               for r in results if r not in winners)
    assert instances[0].get_run(run.id).owner == winners[0].owner


def test_instances_appending_events_share_one_sequence(instances: list[FirestoreStore]
                                                       ) -> None:
    run = new_run(instances[0])
    results = race(INSTANCES, lambda i: [instances[i].append_event(run.id, {"from": i})
                                         for _ in range(2)])
    assert sorted(s for r in results for s in r) == list(range(1, 2 * INSTANCES + 1))
    assert [e["seq"] for e in instances[0].list_events(run.id)] == list(
        range(1, 2 * INSTANCES + 1))


def test_instances_reserving_respect_the_daily_limit(instances: list[FirestoreStore]) -> None:
    store = instances[0]
    site = make_site(store, store.create_user("ann@example.com", "h").id)
    results = race(INSTANCES, lambda i: instances[i].reserve_post(
        entry(site.user_id, site.id, f"slug-{i}"), daily_limit=2))
    assert sum(not isinstance(r, Exception) for r in results) == 2
    assert all(isinstance(r, DailyLimitReached) for r in results if isinstance(r, Exception))
    assert len(store.list_posts(site.user_id)) == 2


def test_instances_keep_item_counts_in_step(instances: list[FirestoreStore]) -> None:
    run = new_run(instances[0], n=INSTANCES)
    race(INSTANCES, lambda i: instances[i].transition_item(run.id, i, ["pending"], "processing"))
    counts = instances[0].get_run(run.id).counts
    assert (counts["pending"], counts["processing"]) == (0, INSTANCES)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "error"), ("", "skipped")])
def test_missing_emulator_skips_locally_and_fails_in_ci(ci: str, outcome: str) -> None:
    env = {**os.environ, "CI": ci, "FIRESTORE_EMULATOR_JAR": "/nonexistent/emulator.jar"}
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/storage/test_contract.py::test_backend_satisfies_the_protocol[firestore]"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    summary = result.stdout.strip().splitlines()[-1]
    assert f"1 {outcome}" in summary, result.stdout
    assert "cloud-firestore-emulator" in result.stdout
