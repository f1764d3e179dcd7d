"""Where fires get their items, with the real automations: the earnings calendar's tickers for
the day (watchlist filtering, nothing that day -> failed), the user's feeds' stories not yet on
the site (served by the local feed server), and a WordPress site that refuses the credentials
(the real WordPress) -> failed, while an unreachable one still gets its run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from automation_scripts.earnings.automation import create as earnings_automation
from automation_scripts.earnings.providers import DemoProvider
from automation_scripts.sports.automation import create as sports_automation
from runner.campaigns import CampaignService
from runner.manager import RunManager
from runner.publishing import PublishingService
from runner.scheduler import Scheduler
from storage.base import LedgerEntry, Site, Store
from storage.secrets import SecretBox
from tests.campaigns.conftest import T0, Clock, Owner, make_owner

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

Factory = Callable[..., tuple[CampaignService, RunManager]]
SETTINGS: dict[str, Any] = {}
FEEDS = ["the-athletic-nba", "cbs-sports-nba", "espn-nba", "deadspin", "espn-fc"]


def body(owner: Owner, kind: str, source: dict[str, Any], **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"name": kind, "kind": kind, "site_id": owner.site_id,
                            "source": source, "per_run": 3,
                            "schedule": {"interval_seconds": 600}, "options": {}}
    made.update(fields)
    return made


def fire_once(service: CampaignService, clock: Clock) -> Any:
    clock.advance(600)
    [result] = Scheduler(service, clock=clock).tick()
    return result


def labels(store: Store, run: Any) -> list[str]:
    return [i.label for i in store.list_items(run.id)]


# earnings ----------------------------------------------------------------------------------

def calendar_day(day: date) -> list[str]:
    return [e.ticker for e in DemoProvider().calendar(day, day)]


def busy_day(after: date) -> date:
    day = after
    while len(calendar_day(day)) < 3:
        day += timedelta(days=1)
    return day


def test_earnings_previews_take_the_calendar_of_the_day_ahead(
        store: Store, make_service: Factory, clock: Clock, owner: Owner) -> None:
    day = busy_day(T0.date() + timedelta(days=2))
    clock.now = clock.now.replace(year=day.year, month=day.month, day=day.day) - timedelta(
        days=2, minutes=10)                                  # the fire lands 2 days before
    service, _ = make_service(store, automations={"earnings": earnings_automation(SETTINGS)})
    service.create(owner.user_id, body(owner, "earnings", {"days_ahead": 2, "mode": "preview"},
                                       options={"provider": "demo"}))
    result = fire_once(service, clock)
    assert result.outcome == "started", result.reason
    tickers = calendar_day(day)[:3]
    assert labels(store, result.run) == [f"{t} earnings preview ({day.isoformat()})"
                                         for t in tickers]


def test_earnings_watchlist_filters_and_an_empty_day_fails(
        store: Store, make_service: Factory, clock: Clock, owner: Owner) -> None:
    day = busy_day(T0.date() + timedelta(days=1))
    clock.now = clock.now.replace(year=day.year, month=day.month, day=day.day) - timedelta(
        days=1, minutes=10)
    watched = calendar_day(day)[1]
    service, _ = make_service(store, automations={"earnings": earnings_automation(SETTINGS)})
    service.create(owner.user_id, body(owner, "earnings", {"watchlist": [watched]},
                                       options={"provider": "demo"}))
    assert labels(store, fire_once(service, clock).run) == [
        f"{watched} earnings preview ({day.isoformat()})"]
    other = make_owner(store, "bob@example.com")
    service.create(other.user_id, body(other, "earnings", {"watchlist": ["ZZZZ"]},
                                       options={"provider": "demo"}))
    results = Scheduler(service, clock=clock).tick(clock.advance(600))
    failed = [r for r in results if r.outcome == "failed"]
    assert len(failed) == 1 and failed[0].reason.startswith("no earnings reports on ")
    assert failed[0].reason.endswith("for the watchlist")


# sports ------------------------------------------------------------------------------------

def test_sports_take_the_top_stories_not_yet_on_the_site(
        store: Store, make_service: Factory, clock: Clock, owner: Owner, shared_data: Path,
        feed_server: Any) -> None:
    from automation_scripts.sports.feeds import (
        FeedFetcher,
        cluster_entries,
        rank_stories,
        validate_sources,
    )

    feeds = [{"name": n, "url": feed_server.url(f"feeds/{n}.xml")} for n in FEEDS]
    store.update_user_settings(owner.user_id, {"sports_feeds": feeds})
    service, _ = make_service(store, automations={"sports": sports_automation(SETTINGS)})
    service.create(owner.user_id, body(owner, "sports", {}, per_run=2))
    clock.advance(600)
    expected = rank_stories(cluster_entries(FeedFetcher().fetch_all(
        validate_sources(feeds)).entries), clock.now)
    store.reserve_post(LedgerEntry(user_id=owner.user_id, site_id=owner.site_id,
                                   slug=expected[0].id, item_key=expected[0].id, kind="sports",
                                   run_id="earlier", day="2026-11-25"))
    [result] = Scheduler(service, clock=clock).tick()
    assert result.outcome == "started", result.reason
    assert [i.key for i in store.list_items(result.run.id)] == [s.id for s in expected[1:3]]


def test_sports_with_no_reachable_feed_fail_with_the_reason(
        store: Store, make_service: Factory, clock: Clock, owner: Owner,
        feed_server: Any) -> None:
    store.update_user_settings(owner.user_id, {"sports_feeds": [
        {"name": "Broken", "url": feed_server.url("bad/error.xml")}]})
    service, _ = make_service(store, automations={"sports": sports_automation(SETTINGS)})
    service.create(owner.user_id, body(owner, "sports", {}))
    result = fire_once(service, clock)
    assert result.outcome == "failed"
    assert "no new stories" in result.reason and "Broken" in result.reason


# credentials -------------------------------------------------------------------------------

def wordpress_site(store: Store, owner: Owner, box: SecretBox, url: str, user: str,
                   password: str) -> str:
    return store.create_site(owner.user_id, Site(
        id="", user_id=owner.user_id, name="Blog", kind="wordpress", url=url, username=user,
        app_password_enc=box.encrypt(password))).id


@pytest.fixture
def box() -> SecretBox:
    from cryptography.fernet import Fernet

    return SecretBox(Fernet.generate_key())


def test_a_site_refusing_the_credentials_gives_failed(
        store: Store, make_service: Factory, clock: Clock, owner: Owner, box: SecretBox,
        tmp_path: Path, wordpress: Any) -> None:
    publishing = PublishingService(store, box, archive_dir=tmp_path / "archive",
                                   allow_private_urls=True)
    service, _ = make_service(store, publishing=publishing)
    site_id = wordpress_site(store, owner, box, wordpress.base_url, wordpress.admin_user,
                             "wrong wrong wrong wrong")
    campaign = service.create(owner.user_id, {
        "name": "WP", "kind": "test", "site_id": site_id, "source": {"items": ["a", "b"]},
        "per_run": 1, "schedule": {"interval_seconds": 600}})
    result = fire_once(service, clock)
    assert result.outcome == "failed" and result.run is None
    assert result.reason.startswith("the site refused the credentials:")
    assert store.list_runs(campaign_id=campaign.id) == []


def test_an_unreachable_site_still_gets_its_run(store: Store, make_service: Factory,
                                                clock: Clock, owner: Owner, box: SecretBox,
                                                tmp_path: Path) -> None:
    from tests.support.procs import free_port

    publishing = PublishingService(store, box, archive_dir=tmp_path / "archive",
                                   allow_private_urls=True)
    service, _ = make_service(store, publishing=publishing)
    site_id = wordpress_site(store, owner, box, f"http://127.0.0.1:{free_port()}", "bot",
                             "abcd efgh ijkl mnop")
    service.create(owner.user_id, {
        "name": "WP down", "kind": "test", "site_id": site_id, "source": {"items": ["a"]},
        "per_run": 1, "schedule": {"interval_seconds": 600}})
    assert fire_once(service, clock).outcome == "started"       # the run retries and says so
