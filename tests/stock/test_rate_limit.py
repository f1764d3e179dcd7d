"""The yahoo request window and the backoff on Yahoo's rate-limit answer, on a fake clock;
waits reach the run as progress, never as a failure."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from automation_scripts.base import ItemContext, StopRequested
from automation_scripts.stock.automation import create
from automation_scripts.stock.market_data import ProviderError
from automation_scripts.stock.rate_limit import RequestWindow, is_rate_limit_error
from automation_scripts.stock.yahoo_prices import DEFAULT_PER_MINUTE, YahooPrices
from portal.config import ConfigurationError, default_value, from_environment
from tests.stock.yahoo_fakes import FakeDownload, FakeTime, YFRateLimitError, yahoo_prices

TODAY = date(2026, 11, 25)


def test_thirty_one_downloads_in_a_minute_at_thirty_wait_for_the_window():
    clock, download = FakeTime(), FakeDownload()
    prices = yahoo_prices(clock, download, per_minute=30)
    waits: list[tuple[float, str]] = []
    for n in range(30):
        prices.provider(lambda s, r: waits.append((s, r))).history(f"T{n}")
    assert clock.sleeps == [] and waits == []
    prices.provider(lambda s, r: waits.append((s, r))).history("T30")
    assert download.total == 31
    assert clock.slept == pytest.approx(60.0)        # the first download's minute runs out
    assert waits[0] == (pytest.approx(60.0), "window")
    assert all(r == "window" for _, r in waits)


def test_the_window_slides_rather_than_resetting():
    clock = FakeTime()
    window = RequestWindow(2, clock=clock.time, sleep=clock.sleep)
    window.acquire()
    clock.now_ts += 40
    window.acquire()
    assert window.acquire() == pytest.approx(20.0)   # the first start leaves the window
    assert window.acquire() == pytest.approx(40.0)   # then the second


def test_a_rate_limit_answer_backs_off_and_the_retry_succeeds():
    clock = FakeTime()
    download = FakeDownload(refuse=2)
    waits: list[tuple[float, str]] = []
    history = yahoo_prices(clock, download).provider(
        lambda s, r: waits.append((s, r))).history("AAPL")
    assert history.source == "yahoo" and len(history.frame) == 300
    assert download.calls == {"AAPL": 3}
    assert clock.slept == pytest.approx(15.0 + 30.0)
    assert {r for _, r in waits} == {"backoff"}
    assert waits[0][0] == pytest.approx(15.0)


def test_the_backoff_holds_every_thread_sharing_the_window():
    clock = FakeTime()
    prices = yahoo_prices(clock, FakeDownload(refuse=1))
    prices.provider().history("AAPL")
    assert clock.slept == pytest.approx(15.0)
    prices.window.hold_off(30)
    prices.provider().history("MSFT")             # another item waits out the hold-off too
    assert clock.slept == pytest.approx(45.0)


def test_yahoo_refusing_every_try_fails_the_item_readably():
    clock = FakeTime()
    download = FakeDownload(refuse=99)
    with pytest.raises(ProviderError, match="kept refusing AAPL as rate limited.*5 tries"):
        yahoo_prices(clock, download).provider().history("AAPL")
    assert download.calls == {"AAPL": 5}
    assert clock.slept == pytest.approx(15 + 30 + 60 + 120)


def test_other_errors_are_not_retried():
    clock = FakeTime()
    calls = []

    def delisted(ticker, years, timeout):
        calls.append(ticker)
        raise RuntimeError(f"${ticker}: possibly delisted; no timezone found")

    with pytest.raises(ProviderError, match="unknown or delisted"):
        yahoo_prices(clock, delisted).provider().history("ZZZZ")
    assert calls == ["ZZZZ"] and clock.sleeps == []


def test_rate_limit_errors_are_recognised_by_class_name_or_message():
    assert is_rate_limit_error(YFRateLimitError())
    assert is_rate_limit_error(RuntimeError("429 Client Error: Too Many Requests for url"))
    try:
        try:
            raise YFRateLimitError()
        except YFRateLimitError as inner:
            raise ProviderError("Yahoo Finance failed for X") from inner
    except ProviderError as outer:
        assert is_rate_limit_error(outer)
    assert not is_rate_limit_error(RuntimeError("no timezone found"))
    assert not is_rate_limit_error(None)


def test_processes_sharing_a_ledger_share_the_window(tmp_path):
    clock = FakeTime()
    ledger = tmp_path / "cache" / "yahoo-requests.json"
    one = RequestWindow(3, clock=clock.time, sleep=clock.sleep, ledger=ledger)
    other = RequestWindow(3, clock=clock.time, sleep=clock.sleep, ledger=ledger)
    one.acquire()
    one.acquire()
    other.acquire()
    assert clock.sleeps == []
    assert other.acquire() == pytest.approx(60.0)
    one.hold_off(20)
    assert other.acquire() == pytest.approx(20.0)
    ledger.write_text("{not json")                  # an unreadable ledger starts afresh
    assert one.acquire() == 0.0


def test_a_stop_during_a_wait_ends_the_wait():
    clock = FakeTime()
    window = RequestWindow(1, clock=clock.time, sleep=clock.sleep)
    window.acquire()

    def checkpoint(seconds, reason):
        if clock.slept >= 5:
            raise StopRequested("pause")

    with pytest.raises(StopRequested):
        window.acquire(checkpoint)
    assert clock.slept == pytest.approx(5.0)         # in steps of at most a second


def test_the_window_refuses_a_limit_below_one():
    with pytest.raises(ValueError):
        RequestWindow(0)


# -- through the stock automation ----------------------------------------------------------------

def item_ctx(tmp_path, ticker, events, *, stop=None):
    def checkpoint():
        if stop is not None and stop():
            raise StopRequested("pause")

    return ItemContext(run_id="r1", user_id="u1", index=0, total=1,
                       options={"data_source": "yahoo"}, workdir=tmp_path / ticker,
                       progress=lambda *a, **k: events.append((a, k)), checkpoint=checkpoint)


def test_waits_reach_the_run_page_as_processing_progress(tmp_path):
    clock, download = FakeTime(), FakeDownload(refuse=1)
    stock = create({"INSTANCE_PATH": str(tmp_path / "instance"), "TICKZEN_YAHOO_PER_MINUTE": 1})
    stock.yahoo = yahoo_prices(clock, download, tmp_path / "cache", per_minute=1)
    stock.company_sources = {}          # no company data here (tests/stock/test_fundamentals)
    events: list[tuple] = []
    for ticker in ("AAPL", "MSFT", "AAPL"):
        [item], _ = stock.prepare([ticker], {"data_source": "yahoo"}, TODAY)
        article = stock.process(item, item_ctx(tmp_path, ticker, events))
        assert ticker in article.title
    # AAPL refused once, then cached; the SPY benchmark too
    assert download.calls == {"AAPL": 2, "MSFT": 1, "SPY": 1}
    messages = [a[1] for a, _ in events]
    assert "Yahoo Finance is rate limiting: waiting 15 s before asking again: AAPL" in messages
    assert "Waiting 60 s for Yahoo's rate limit: MSFT" in messages
    waits = [(a, k) for a, k in events if "Waiting" in a[1] or "rate limiting" in a[1]]
    assert all(a[0] == "processing" and k["percent"] == 10
               and a[1].endswith(": " + k["data"]["ticker"]) for a, k in waits)
    assert {a[0] for a, _ in events} == {"processing"}
    third = messages[messages.index("Article ready: MSFT") + 1:]
    assert third[0] == "Fetching prices: AAPL"
    assert not [m for m in third if "Waiting" in m or "rate limiting" in m]   # a cache hit


def test_a_pause_during_a_wait_stops_the_item(tmp_path):
    clock, download = FakeTime(), FakeDownload()
    stock = create({"INSTANCE_PATH": str(tmp_path / "instance")})
    stock.yahoo = yahoo_prices(clock, download, per_minute=1)
    stock.company_sources = {}
    events: list[tuple] = []
    [first], _ = stock.prepare(["AAPL"], {"data_source": "yahoo"}, TODAY)
    stock.process(first, item_ctx(tmp_path, "AAPL", events))
    [second], _ = stock.prepare(["MSFT"], {"data_source": "yahoo"}, TODAY)
    slept = clock.slept                 # the SPY benchmark waited its turn in the first item
    with pytest.raises(StopRequested):
        stock.process(second, item_ctx(tmp_path, "MSFT", events,
                                       stop=lambda: clock.slept >= slept + 3))
    assert download.calls == {"AAPL": 1, "SPY": 1}


def test_the_automation_reads_its_settings():
    prices = YahooPrices.from_settings({"TICKZEN_YAHOO_PER_MINUTE": 12,
                                        "TICKZEN_PRICE_CACHE_DIR": "/tmp/x/prices",
                                        "INSTANCE_PATH": "/tmp/x"})
    assert prices.window.per_minute == 12 and str(prices.cache.root) == "/tmp/x/prices"
    assert str(prices.window.ledger) == "/tmp/x/cache/yahoo-requests.json"
    bare = YahooPrices.from_settings({})
    assert bare.window.per_minute == 30 and bare.cache is None and bare.window.ledger is None
    assert default_value("TICKZEN_YAHOO_PER_MINUTE") == DEFAULT_PER_MINUTE


def test_the_portal_builds_the_stock_automation_with_its_settings(make_app, monkeypatch):
    monkeypatch.setenv("TICKZEN_YAHOO_PER_MINUTE", "12")
    app = make_app()
    prices = app.extensions["tickzen"].automations["stock"].yahoo
    instance = Path(app.instance_path)
    assert prices.window.per_minute == 12
    assert prices.cache.root == instance / "cache" / "prices"
    assert prices.window.ledger == instance / "cache" / "yahoo-requests.json"
    assert make_app(TICKZEN_PRICE_CACHE_DIR=None).extensions["tickzen"].automations[
        "stock"].yahoo.cache is None
    for bad in ("0", "many"):
        monkeypatch.setenv("TICKZEN_YAHOO_PER_MINUTE", bad)
        with pytest.raises(ConfigurationError, match="TICKZEN_YAHOO_PER_MINUTE"):
            from_environment()
