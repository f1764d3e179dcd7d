"""Providers: CSV edge cases, demo determinism, Yahoo errors."""

from __future__ import annotations

import socket
import threading

import pandas as pd
import pytest

from automation_scripts.stock.market_data import (
    CsvProvider,
    DemoProvider,
    ProviderError,
    YahooProvider,
)

GOOD = ("Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,10,11,9,10.5,100\n2024-01-03,10.5,11.5,10,11,200\n")


def rows(n: int, start: str = "2024-01-01") -> list[str]:
    dates = pd.bdate_range(start, periods=n)
    return [f"{d.date()},{10 + i * 0.1:.2f},{11 + i * 0.1:.2f},{9 + i * 0.1:.2f},"
            f"{10.5 + i * 0.1:.2f},{1000 + i}" for i, d in enumerate(dates)]


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# -- CSV -----------------------------------------------------------------------------------------

def test_csv_folder_reads_ticker_file_case_insensitive_columns(tmp_path):
    write(tmp_path, "AAPL.csv", "date,OPEN,high,Low,close,VOLUME\n" + "\n".join(rows(40)))
    h = CsvProvider(directory=tmp_path).history("AAPL")
    assert list(h.frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert len(h.frame) == 40 and h.problems == [] and h.source == "csv"
    assert isinstance(h.frame.index, pd.DatetimeIndex)


def test_share_class_file_found_under_either_spelling(tmp_path):
    write(tmp_path, "BRK.B.csv", GOOD)
    assert len(CsvProvider(directory=tmp_path).history("BRK-B").frame) == 2


def test_adj_close_is_preferred(tmp_path):
    write(tmp_path, "X.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n"
          "2024-01-02,10,11,9,10,5,100\n2024-01-03,10,11,9,10,5,100\n")
    frame = CsvProvider(directory=tmp_path).history("X").frame
    assert frame["Close"].tolist() == [5.0, 5.0]
    assert frame["High"].tolist() == [5.5, 5.5]           # scaled with the adjustment


def test_missing_columns_are_named(tmp_path):
    write(tmp_path, "X.csv", "Day,Price\n2024-01-02,10\n")
    with pytest.raises(ProviderError, match="missing required column.*Close"):
        CsvProvider(directory=tmp_path).history("X")
    write(tmp_path, "Y.csv", "Open,Close\n1,2\n")
    with pytest.raises(ProviderError, match="missing required column.*Date"):
        CsvProvider(directory=tmp_path).history("Y")


def test_unsorted_duplicate_and_bad_rows_are_repaired_and_reported(tmp_path):
    lines = rows(5)
    text = "Date,Open,High,Low,Close,Volume\n" + "\n".join(
        [lines[3], lines[0], lines[1], lines[1].replace(",1001", ",5555"),
         "not-a-date,1,2,0.5,1,10", "2024-01-20,1,2,0.5,abc,10", lines[2], lines[4]])
    write(tmp_path, "Z.csv", text)
    h = CsvProvider(directory=tmp_path).history("Z")
    assert h.frame.index.is_monotonic_increasing and h.frame.index.is_unique
    assert len(h.frame) == 5
    assert h.frame["Volume"].iloc[1] == 5555                  # the last duplicate wins
    joined = " | ".join(h.problems)
    assert "dropped 2 unreadable row" in joined
    assert "sorted" in joined and "1 duplicate date" in joined


def test_latin1_and_semicolons(tmp_path):
    text = "Datum;Open;High;Low;Close;Volume;Bemerkung\n" + "\n".join(
        r.replace(",", ";") + ";Börse" for r in rows(3))
    text = text.replace("Datum", "Date")
    write(tmp_path, "L.csv", text.encode("latin-1"))
    h = CsvProvider(directory=tmp_path).history("L")
    assert len(h.frame) == 3
    assert any("Latin-1" in n for n in h.notes) and any("semicolon" in n for n in h.notes)


def test_utf8_bom_is_accepted(tmp_path):
    write(tmp_path, "B.csv", "\ufeff" + GOOD)
    assert len(CsvProvider(directory=tmp_path).history("B").frame) == 2


def test_upload_with_ticker_column_is_filtered(tmp_path):
    up = write(tmp_path, "up.csv", "Symbol,Date,Close\nAAA,2024-01-02,1\nBBB,2024-01-02,2\n"
               "AAA,2024-01-03,1.5\n")
    h = CsvProvider(upload=up).history("AAA")
    assert h.frame["Close"].tolist() == [1.0, 1.5]
    assert any("no Open/High/Low column" in p for p in h.problems)
    with pytest.raises(ProviderError, match="no prices for CCC"):
        CsvProvider(upload=up).history("CCC")


def test_unknown_ticker_and_no_source(tmp_path):
    with pytest.raises(ProviderError, match="no prices for NOPE"):
        CsvProvider(directory=tmp_path).history("NOPE")
    with pytest.raises(ProviderError, match="needs an uploaded price file"):
        CsvProvider().history("NOPE")


def test_garbage_file_is_a_provider_error(tmp_path):
    write(tmp_path, "G.csv", b"\x00\x01\x02 not a table")
    with pytest.raises(ProviderError):
        CsvProvider(directory=tmp_path).history("G")


# -- demo ----------------------------------------------------------------------------------------

def test_demo_is_deterministic_per_ticker_and_labelled():
    a1 = DemoProvider().history("AAPL")
    a2 = DemoProvider().history("AAPL")
    b = DemoProvider().history("MSFT")
    pd.testing.assert_frame_equal(a1.frame, a2.frame)
    assert not a1.frame["Close"].equals(b.frame["Close"])
    assert a1.is_demo and a1.source == "demo" and "demo data" in a1.notes[0]
    f = a1.frame
    assert (f["High"] >= f[["Open", "Close"]].max(axis=1)).all()
    assert (f["Low"] <= f[["Open", "Close"]].min(axis=1)).all() and (f["Low"] > 0).all()
    assert len(f) >= 2500


# -- yahoo ---------------------------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_yahoo_offline_is_a_fast_clear_error():
    provider = YahooProvider(probe=("127.0.0.1", closed_port()), probe_timeout=1)
    with pytest.raises(ProviderError, match="unreachable.*offline"):
        provider.history("AAPL")


def test_yahoo_unknown_symbol_is_a_provider_error():
    provider = YahooProvider(probe=None, download=lambda t, y, to: pd.DataFrame())
    with pytest.raises(ProviderError, match="no price data for 'ZZZZZ'"):
        provider.history("ZZZZZ")

    def delisted(t, y, to):
        raise RuntimeError("$ZZZZZ: possibly delisted; no timezone found")

    with pytest.raises(ProviderError, match="unknown or delisted"):
        YahooProvider(probe=None, download=delisted).history("ZZZZZ")


def test_yahoo_never_hangs():
    gate = threading.Event()

    def stuck(t, y, to):
        gate.wait(30)
        return pd.DataFrame()

    provider = YahooProvider(probe=None, download=stuck, timeout=0.3)
    try:
        with pytest.raises(ProviderError, match="did not answer"):
            provider.history("AAPL")
    finally:
        gate.set()


def test_yahoo_answer_is_cleaned(recorded):
    frame = recorded.history("GOOG").frame.iloc[-50:]
    yahoo_like = frame.assign(Dividends=0.0).rename_axis("Date")
    yahoo_like.index = yahoo_like.index.tz_localize("America/New_York")
    h = YahooProvider(probe=None, download=lambda t, y, to: yahoo_like).history("GOOG")
    assert h.source == "yahoo" and len(h.frame) == 50
    assert h.frame["Close"].iloc[-1] == pytest.approx(frame["Close"].iloc[-1])


def test_recorded_provider_unknown_symbol(recorded):
    with pytest.raises(ProviderError, match="no price data for 'NOPE'"):
        recorded.history("NOPE")
