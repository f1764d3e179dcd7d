"""StockAutomation.prepare / process with a real ItemContext (no engine)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from automation_scripts.base import AutomationError, InvalidItems, ItemContext, StopRequested
from automation_scripts.stock.automation import create
from automation_scripts.stock.market_data import PriceHistory, ProviderError

TODAY = date(2026, 11, 25)


@pytest.fixture
def stock():
    return create({"INSTANCE_PATH": "/nonexistent"})


def make_ctx(tmp_path: Path, options=None, services=None, stop_after: int | None = None):
    events: list[tuple] = []
    calls = {"n": 0}

    def checkpoint() -> None:
        calls["n"] += 1
        if stop_after is not None and calls["n"] > stop_after:
            raise StopRequested("pause")

    ctx = ItemContext(run_id="r1", user_id="u1", index=0, total=1,
                      options=options or {"data_source": "demo"}, workdir=tmp_path / "w",
                      progress=lambda *a, **k: events.append((a, k)), checkpoint=checkpoint,
                      services=services or {})
    return ctx, events


def test_prepare_normalises_dedupes_and_keys(stock):
    items, notes = stock.prepare(["aapl", "BRK.B", "brk-b", " AAPL "], {}, TODAY)
    assert [(i.key, i.input, i.label) for i in items] == [
        ("aapl-stock-analysis-2026-11-25", "AAPL", "AAPL"),
        ("brk-b-stock-analysis-2026-11-25", "BRK-B", "BRK-B")]
    assert len(notes) == 2 and "duplicate" in notes[0]


@pytest.mark.parametrize("items,options,message", [
    (["AAPL", "bad ticker!"], {}, "'bad ticker!' is not a valid ticker"),
    (["AAPL", "WAYTOOLONGTICKER"], {}, "WAYTOOLONGTICKER"),
    ([], {}, "no tickers"),
    (["AAPL"], {"data_source": "bloomberg"}, "unknown data_source 'bloomberg'"),
    (["AAPL"], {"data_source": "csv"}, "needs an uploaded price file"),
    (["AAPL"], {"data_source": "csv", "csv_upload_id": "../../etc"}, "not a valid upload id"),
])
def test_prepare_refuses_bad_input_naming_it(stock, items, options, message):
    with pytest.raises(InvalidItems) as info:
        stock.prepare(items, options, TODAY)
    assert message in str(info.value)


def test_process_demo_writes_report_and_charts(stock, tmp_path):
    [item], _ = stock.prepare(["msft"], {}, TODAY)
    ctx, events = make_ctx(tmp_path)
    article = stock.process(item, ctx)
    assert article.slug == "msft-stock-analysis-2026-11-25"
    assert [i.filename for i in article.images] == ["msft-price.png", "msft-momentum.png",
                                                    "msft-volume.png"]
    assert article.images[0].role == "featured" and all(i.alt for i in article.images)
    for image in article.images[1:]:
        assert "{{image:" + image.filename + "}}" in article.html
    assert "demo data" in article.tags
    files = sorted(p.name for p in ctx.workdir.iterdir())
    assert files == ["msft-momentum.png", "msft-price.png", "msft-volume.png", "report.json"]
    report = json.loads((ctx.workdir / "report.json").read_text())
    assert report["title"] == article.title and report["is_demo"] is True
    assert set(report["forecast"]) == {"model", "h30", "h90"}
    h90 = report["forecast"]["h90"]
    assert h90["lower95"] < h90["lower80"] < h90["mean"] < h90["upper80"] < h90["upper95"]
    percents = [k.get("percent") for _, k in events]
    assert percents == sorted(percents) and percents[-1] == 100
    assert all(k["data"] == {"ticker": "MSFT"} for _, k in events)
    assert "Fetching prices: MSFT" in events[0][0][1]


def test_process_stops_at_a_checkpoint(stock, tmp_path):
    [item], _ = stock.prepare(["msft"], {}, TODAY)
    ctx, _ = make_ctx(tmp_path, stop_after=2)
    with pytest.raises(StopRequested):
        stock.process(item, ctx)
    assert not (ctx.workdir / "report.json").exists()


def test_recorded_yahoo_and_short_history(stock, tmp_path, recorded):
    [goog, kvue], _ = stock.prepare(["GOOG", "KVUE"], {"data_source": "yahoo"}, TODAY)
    services = {"price_providers": {"yahoo": recorded}}
    ctx, _ = make_ctx(tmp_path, {"data_source": "yahoo"}, services)
    article = stock.process(kvue, ctx)
    assert "Yahoo Finance" in article.html and "5Y return needs more" in article.html
    assert "Demo data" not in article.html and "demo data" not in article.tags
    ctx2, _ = make_ctx(tmp_path / "2", {"data_source": "yahoo"}, services)
    assert "GOOG" in stock.process(goog, ctx2).title


def test_too_short_history_fails_the_item_clearly(stock, tmp_path, recorded):
    class Tiny:
        name = "yahoo"

        def history(self, ticker, years=10):
            full = recorded.history("GOOG")
            return PriceHistory(ticker, full.frame.iloc[-20:], "yahoo")

    [item], _ = stock.prepare(["GOOG"], {"data_source": "yahoo"}, TODAY)
    ctx, _ = make_ctx(tmp_path, {"data_source": "yahoo"}, {"price_providers": {"yahoo": Tiny()}})
    with pytest.raises(AutomationError, match="only 20 trading days"):
        stock.process(item, ctx)


def test_csv_upload_is_read_from_the_users_folder(tmp_path):
    stock = create({"INSTANCE_PATH": str(tmp_path)})
    upload_id = "a" * 32
    folder = tmp_path / "uploads" / "u1"
    folder.mkdir(parents=True)
    lines = ["Date,Close"] + [f"2024-{m:02d}-{d:02d},{100 + m + d / 10}"
                              for m in range(1, 7) for d in range(1, 21)]
    (folder / f"{upload_id}.csv").write_text("\n".join(lines))
    options = {"data_source": "csv", "csv_upload_id": upload_id}
    [item], _ = stock.prepare(["ZZZ"], options, TODAY)
    ctx, _ = make_ctx(tmp_path, options)
    article = stock.process(item, ctx)
    assert "uploaded CSV" in article.html and "no Open/High/Low column" in article.html
    ctx.options["csv_upload_id"] = "b" * 32
    with pytest.raises(ProviderError, match="upload it again"):
        stock.process(item, ctx)
