"""The yahoo prices' day cache: one download per ticker and US trading day, shared by runs
and instances through the folder, atomic files, corrupt ones replaced, one download for two
threads."""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

import pandas as pd
import pytest

from automation_scripts.stock.market_data import PriceHistory, ProviderError
from automation_scripts.stock.price_cache import PriceCache, file_name, trading_day
from tests.stock.yahoo_fakes import FakeDownload, FakeTime, yahoo_prices


def test_trading_day_is_the_new_york_date():
    assert trading_day(datetime(2026, 11, 26, 4, 59, tzinfo=timezone.utc)) == date(2026, 11, 25)
    assert trading_day(datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)) == date(2026, 11, 26)
    # summer time: New York is UTC-4
    assert trading_day(datetime(2026, 7, 2, 3, 59)) == date(2026, 7, 1)
    assert trading_day(datetime(2026, 7, 2, 4, 0)) == date(2026, 7, 2)


def test_second_run_on_the_same_trading_day_downloads_nothing(tmp_path):
    clock, download = FakeTime(), FakeDownload()
    first = yahoo_prices(clock, download, tmp_path / "cache").provider().history("AAPL")
    # another run, later that day, with its own objects (another instance on the same folder)
    clock.move_to(datetime(2026, 11, 26, 4, 30, tzinfo=timezone.utc))   # 23:30 in New York
    again = yahoo_prices(clock, download, tmp_path / "cache").provider().history("AAPL")
    assert download.calls == {"AAPL": 1}
    assert clock.sleeps == []                       # a hit takes no slot in the window either
    pd.testing.assert_frame_equal(first.frame, again.frame, check_freq=False)
    assert again.source == first.source == "yahoo"
    assert again.problems == first.problems
    assert (tmp_path / "cache" / "2026-11-25" / "AAPL.npz").is_file()
    assert not list((tmp_path / "cache" / "2026-11-25").glob(".*"))   # no temporary left


def test_a_new_trading_day_downloads_again_and_old_days_go(tmp_path):
    clock, download = FakeTime(), FakeDownload()
    prices = yahoo_prices(clock, download, tmp_path / "cache")
    prices.provider().history("AAPL")
    clock.move_to(datetime(2026, 11, 26, 5, 30, tzinfo=timezone.utc))   # 00:30 in New York
    prices.provider().history("AAPL")
    prices.provider().history("AAPL")
    assert download.calls == {"AAPL": 2}
    clock.move_to(datetime(2026, 11, 27, 15, 0, tzinfo=timezone.utc))
    prices.provider().history("AAPL")
    assert download.calls == {"AAPL": 3}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["2026-11-26", "2026-11-27"]


def test_failures_are_not_cached(tmp_path):
    clock = FakeTime()
    empty = yahoo_prices(clock, lambda t, y, to: pd.DataFrame(), tmp_path / "cache")
    for _ in range(2):
        with pytest.raises(ProviderError, match="no price data for 'ZZZZ'"):
            empty.provider().history("ZZZZ")
    assert not (tmp_path / "cache" / "2026-11-25" / "ZZZZ.npz").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other ticker"])
def test_a_corrupt_cache_file_is_ignored_and_replaced(tmp_path, damage):
    clock, download = FakeTime(), FakeDownload()
    prices = yahoo_prices(clock, download, tmp_path / "cache")
    good = prices.provider().history("MSFT")
    path = tmp_path / "cache" / "2026-11-25" / "MSFT.npz"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00not a cache file at all")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        prices.provider().history("IBM")
        path.write_bytes((tmp_path / "cache" / "2026-11-25" / "IBM.npz").read_bytes())
    again = prices.provider().history("MSFT")
    assert download.calls["MSFT"] == 2
    pd.testing.assert_frame_equal(good.frame, again.frame, check_freq=False)
    assert path.read_bytes() != b"" and PriceCache(tmp_path / "cache", now=clock.now).get(
        "MSFT", 10) is not None                    # replaced by a good file
    prices.provider().history("MSFT")
    assert download.calls["MSFT"] == 2


def test_a_file_with_fewer_years_than_asked_is_a_miss(tmp_path):
    clock = FakeTime()
    cache = PriceCache(tmp_path, now=clock.now)
    frame = pd.DataFrame({c: [1.0, 2.0] for c in ("Open", "High", "Low", "Close", "Volume")},
                         index=pd.DatetimeIndex(["2026-11-23", "2026-11-24"], name="Date"))
    cache.put(PriceHistory("X", frame, "yahoo", notes=["n"], problems=["p"]), years=2)
    assert cache.get("X", 10) is None
    hit = cache.get("X", 1)
    assert hit is not None and hit.notes == ["n"] and hit.problems == ["p"]
    assert hit.frame["Close"].tolist() == [1.0, 2.0]


def test_ticker_file_names_stay_inside_the_day_folder():
    assert file_name("BRK-B") == "BRK-B.npz" and file_name("^GSPC") == "^GSPC.npz"
    assert "/" not in file_name("../../etc/passwd") and file_name("A/B") == "A_2FB.npz"


def test_two_threads_asking_for_the_same_ticker_download_once(tmp_path):
    clock, gate = FakeTime(), threading.Event()
    download = FakeDownload(gate=gate)
    prices = yahoo_prices(clock, download, tmp_path / "cache")
    results: list[PriceHistory] = []

    def ask() -> None:
        results.append(prices.provider().history("NVDA"))

    first = threading.Thread(target=ask)
    first.start()
    assert download.entered.wait(30)
    second = threading.Thread(target=ask)
    second.start()
    key = (date(2026, 11, 25), "NVDA")
    for _ in range(3000):                            # until the second waits for the first
        entry = prices.cache._keys.get(key)
        if entry is not None and entry.users == 2:
            break
        threading.Event().wait(0.01)
    gate.set()
    first.join(30)
    second.join(30)
    assert len(results) == 2 and download.calls == {"NVDA": 1}
    assert prices.cache._keys == {}                  # the per-ticker lock is gone after use
