"""The LLM writer's numbers are checked: a stand-in OpenAI-compatible server (a real HTTP server
in the test) that invents a figure loses to the template writer, which says why; an honest
answer is published as written; a 429 or a timeout falls back at once; past the run's
TICKZEN_LLM_MAX_CALLS the template writes, and says so."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from automation_scripts.fact_check import unsupported_figures
from automation_scripts.llm_calls import CallBudget
from automation_scripts.writing import LLMWriter, TemplateWriter, fmt_money, fmt_num
from tests.articles.conftest import stock_facts
from tests.earnings.runs import Member

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class StandIn(BaseHTTPRequestHandler):
    """Answers like a chat-completions endpoint; ``mode`` says how honest it is."""

    mode = "honest"
    requests: list[list[dict]] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StandIn.requests.append(body["messages"])
        mode = StandIn.mode
        if mode == "429":
            return self._send(429, b'{"error": "rate limited"}')
        if mode == "slow":
            time.sleep(1.5)
        facts = json.loads(body["messages"][1]["content"].split("Facts:\n", 1)[1])
        corrected = len(body["messages"]) > 2
        invent = mode == "invent" or (mode == "fix" and not corrected)
        close = fmt_money(facts["last_close"])
        rsi = fmt_num(facts["ind"]["rsi"], 1)
        ticker = facts["ticker"]
        body_html = (f"<h2>Outlook</h2><p>{ticker} closed at {close} on {facts['as_of']}. "
                     f"The 14-day RSI reads {rsi}, and the signals lean {facts['stance']}. "
                     "Momentum and trend are discussed below with care and restraint.</p>")
        if invent:
            body_html += "<p>Its P/E ratio of 31.7 and ROE of 48.2% look rich.</p>"
        answer = {"title": f"{ticker} at {close}: a measured look",
                  "summary": f"{ticker} closed at {close}; the stance is {facts['stance']}.",
                  "body_html": body_html}
        data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                    "content": json.dumps(answer)}}]})
        return self._send(200, data.encode())

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def llm(llm_url: str) -> LLMWriter:
    StandIn.requests.clear()
    return LLMWriter(llm_url, "stand-in", fallback=TemplateWriter(), timeout=0.5)


def test_an_honest_answer_is_published_as_written(llm):
    StandIn.mode = "honest"
    facts = stock_facts("AAPL", "site-a")
    text = llm.write("stock", facts)
    assert text.writer == "llm:stand-in" and text.writer_note == ""
    assert "The 14-day RSI reads" in text.html and "Key figures" in text.html
    assert len(StandIn.requests) == 1


def test_an_invented_figure_is_refused_twice_then_the_template_writes(llm):
    StandIn.mode = "invent"
    facts = stock_facts("AAPL", "site-a")
    text = llm.write("stock", facts)
    assert text.writer == "template"
    assert "31.7" in text.writer_note and "48.2%" in text.writer_note
    assert text.html == TemplateWriter().write("stock", facts).html
    first, second = StandIn.requests
    assert len(first) == 2 and len(second) == 3
    assert "31.7" in second[-1]["content"] and "48.2%" in second[-1]["content"]


def test_a_corrected_second_answer_is_taken(llm):
    StandIn.mode = "fix"
    text = llm.write("stock", stock_facts("MSFT", "site-a"))
    assert text.writer == "llm:stand-in" and "31.7" not in text.html
    assert len(StandIn.requests) == 2


@pytest.mark.parametrize("mode,note", [("429", "HTTP 429"), ("slow", "did not answer in time")])
def test_rate_limits_and_timeouts_fall_back_at_once(llm, mode, note):
    StandIn.mode = mode
    text = llm.write("stock", stock_facts("KO", "site-a"))
    assert text.writer == "template" and note in text.writer_note
    assert len(StandIn.requests) == 1


def test_the_checker_reads_money_percentages_dates_and_precision():
    facts = {"close": 191.7021, "ret": -0.1752, "rsi": 31.3467, "big": 2.5e12,
             "as_of": "2026-02-13", "shown": "+12.5%"}
    ok = ("closed at $191.70, down 17.5% (or 18%), RSI 31.3, $2.50 trillion, on "
          "2026-02-13 (February 13, 2026), +12.5% in 2026")
    assert unsupported_figures(ok, facts) == []
    wrong = "closed at $191.80, RSI 31.4, up 17.6%, on March 3, 2026, P/E 24"
    assert unsupported_figures(wrong, facts) == ["2026-03-03", "$191.80", "31.4", "17.6%",
                                                 "24"]


@pytest.fixture
def llm_app(make_app, tmp_path: Path, llm_url: str):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50,
                    TICKZEN_LLM_BASE_URL=llm_url, TICKZEN_LLM_MODEL="stand-in",
                    TICKZEN_LLM_TIMEOUT=2, TICKZEN_GENERATION_PROCESSES=0)


def test_run_answers_say_which_writer_wrote_each_item(llm_app):
    StandIn.mode = "invent"
    alice = Member(llm_app)
    site = alice.site(name="Archive", kind="local")
    run = alice.wait(alice.start("stock", site, ["AAPL"], data_source="demo",
                                 status="publish"))
    [item] = run["items"]
    assert item["status"] == "published" and item["writer"] == "template"
    assert "31.7" in item["writer_note"] and "template writer" in item["writer_note"]
    StandIn.mode = "honest"
    run = alice.wait(alice.start("stock", site, ["MSFT"], data_source="demo",
                                 status="publish"))
    assert run["items"][0]["writer"] == "llm:stand-in"
    assert run["items"][0]["writer_note"] == ""


# -- TICKZEN_LLM_MAX_CALLS: a run's LLM calls are capped ------------------------------------------

def test_past_the_cap_the_template_writes_and_says_why(llm, tmp_path: Path):
    StandIn.mode = "honest"
    calls = CallBudget(tmp_path / "run" / "llm-calls", 1)
    first = llm.write("stock", stock_facts("AAPL", "site-a"), calls)
    second = llm.write("stock", stock_facts("MSFT", "site-a"), calls)
    assert first.writer == "llm:stand-in" and second.writer == "template"
    assert "cap of 1 LLM calls" in second.writer_note
    assert "TICKZEN_LLM_MAX_CALLS" in second.writer_note
    assert len(StandIn.requests) == 1 and calls.used() == 1


def test_a_refusal_with_no_call_left_names_the_figures_and_the_cap(llm, tmp_path: Path):
    StandIn.mode = "invent"
    calls = CallBudget(tmp_path / "llm-calls", 1)
    text = llm.write("stock", stock_facts("AAPL", "site-a"), calls)
    assert text.writer == "template" and len(StandIn.requests) == 1
    assert "31.7" in text.writer_note and "cap of 1 LLM calls" in text.writer_note


def _take_many(path: str, limit: int, count: int) -> int:
    budget = CallBudget(Path(path), limit)
    return sum(budget.take() for _ in range(count))


def test_the_count_is_shared_by_processes_and_threads(tmp_path: Path):
    path = str(tmp_path / "llm-calls")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        taken = pool.starmap(_take_many, [(path, 25, 10)] * 4)
    assert sum(taken) == 25 and CallBudget(Path(path), 25).used() == 25
    assert CallBudget(Path(path), 0).take()              # 0: no cap


def test_a_run_stops_asking_the_llm_at_its_cap(make_app, tmp_path: Path, llm_url: str):
    StandIn.mode = "honest"
    StandIn.requests.clear()
    app = make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                   TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50,
                   TICKZEN_LLM_BASE_URL=llm_url, TICKZEN_LLM_MODEL="stand-in",
                   TICKZEN_LLM_TIMEOUT=2, TICKZEN_LLM_MAX_CALLS=2,
                   TICKZEN_GENERATION_PROCESSES=0)
    alice = Member(app)
    site = alice.site(name="Archive", kind="local")
    run = alice.wait(alice.start("stock", site, ["AAPL", "MSFT", "KO"], data_source="demo",
                                 status="publish"))
    writers = sorted(item["writer"] for item in run["items"])
    assert [item["status"] for item in run["items"]] == ["published"] * 3
    assert writers == ["llm:stand-in", "llm:stand-in", "template"]
    [capped] = [item for item in run["items"] if item["writer"] == "template"]
    assert "cap of 2 LLM calls" in capped["writer_note"]
    assert len(StandIn.requests) == 2
