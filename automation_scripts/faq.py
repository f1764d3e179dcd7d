"""FAQ sections: three to five questions answered from the article's own figures.

The questions are the ones readers search for (the trend, what the RSI says, the 90-day range,
the forecast, the risk, and where the data source has them the valuation, the dividend, the
analysts' target and the benchmark; for earnings the date, the consensus, the track record),
each answered only with numbers the article itself shows, worded and ordered by the article's
Variants. The entries go into the facts (both writers render them) and, as FAQPage structured
data, to the publisher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from automation_scripts.base import FaqEntry
from automation_scripts.variants import Variants
from automation_scripts.writing import fmt_big_money, fmt_money, fmt_num, fmt_pct

MIN_QUESTIONS, MAX_QUESTIONS = 3, 5

Question = Callable[[Mapping[str, Any], Variants], "FaqEntry | None"]


def _above(price: float, level: float | None) -> str:
    return "above" if level is not None and price > level else "below"


def _trend(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    t, ind, close = f["ticker"], f["ind"], f["last_close"]
    q = v.pick("q", [f"Is {t} in an uptrend or a downtrend?", f"What is the trend of {t} stock?",
                     f"Which way is {t} trending?", f"Is {t} above its moving averages?",
                     f"What do the moving averages say about {t}?"])
    if ind.get("sma200") is not None and ind.get("sma50") is not None:
        lead = v.pick("lead", [f"{t} closed at {fmt_money(close)} on {f['as_of']},",
                               f"At its {f['as_of']} close of {fmt_money(close)}, {t} was",
                               f"The last price, {fmt_money(close)} ({f['as_of']}), is",
                               f"Trading at {fmt_money(close)}, the stock sits"])
        a = (f"{lead} {_above(close, ind['sma50'])} "
             + v.pick("s50", ["its 50-day average", "the 50-day line", "the 50-day mean"])
             + f" ({fmt_money(ind['sma50'])}) and {_above(close, ind['sma200'])} "
             + v.pick("s200", ["its 200-day average", "the 200-day line",
                               "the long-run 200-day mean"])
             + f" ({fmt_money(ind['sma200'])}). ")
    elif ind.get("sma20") is not None:
        a = (f"With a short price history, {t} is compared with its 20-day average only: the "
             f"close of {fmt_money(close)} is {_above(close, ind['sma20'])} "
             f"{fmt_money(ind['sma20'])}. ")
    else:
        return None
    a += v.pick("a", [f"Taken together, the signals read {f['stance']}.",
                      f"The overall technical reading is {f['stance']}.",
                      f"On balance the indicators lean {f['stance']}.",
                      f"Our composite of the signals comes out {f['stance']}.",
                      f"Across all indicators the verdict is {f['stance']}."])
    return FaqEntry(q, a)


def _rsi(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    rsi = f["ind"].get("rsi")
    if rsi is None:
        return None
    t = f["ticker"]
    q = v.pick("q", [f"What does the RSI say about {t}?", f"Is {t} overbought or oversold?",
                     f"What is {t}'s RSI?", f"How strong is {t}'s momentum?",
                     f"What does {t}'s relative strength index show?"])
    if rsi >= 70:
        meaning = "above 70, the zone usually read as overbought"
    elif rsi <= 30:
        meaning = "below 30, the zone usually read as oversold"
    elif rsi > 50:
        meaning = "between 50 and 70: positive momentum, not overbought"
    else:
        meaning = "between 30 and 50: soft momentum, not oversold"
    a = v.pick("a", [f"The 14-day RSI of {t} is {fmt_num(rsi, 1)}",
                     f"{t}'s relative strength index (14 days) stands at {fmt_num(rsi, 1)}",
                     f"RSI over 14 sessions reads {fmt_num(rsi, 1)} for {t}",
                     f"At {fmt_num(rsi, 1)}, the 14-day RSI of {t} is"]) \
        + v.pick("b", [f", {meaning}.", f": {meaning}.", f" — {meaning}."]) + " " \
        + v.pick("c", ["RSI alone is no timing signal.", "Read it with the trend, not alone.",
                       "Momentum readings can stay extreme for weeks.",
                       "It measures the speed of recent moves, not value."])
    return FaqEntry(q, a)


def _range90(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    r = f.get("range90")
    if not r:
        return None
    t = f["ticker"]
    q = v.pick("q", [f"What is {t}'s 90-day trading range?",
                     f"How much has {t} moved in the last 90 sessions?",
                     f"What are {t}'s 90-day high and low?",
                     f"Between which prices has {t} traded lately?",
                     f"How wide is {t}'s recent trading range?"])
    a = (v.pick("a", [f"Over the last 90 trading sessions {t} traded between",
                      f"In the past 90 sessions the price of {t} moved between",
                      f"The 90-day low and high of {t} are",
                      f"Across 90 trading days, {t} ranged between"])
         + f" {fmt_money(r['low'])} and {fmt_money(r['high'])}"
         + v.pick("b", [f"; it last closed at {fmt_money(f['last_close'])}.",
                        f", against a latest close of {fmt_money(f['last_close'])}.",
                        f". The most recent close is {fmt_money(f['last_close'])}.",
                        f" (last close: {fmt_money(f['last_close'])})."]))
    return FaqEntry(q, a)


def _forecast(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    h = f["forecast"]["h90"]
    t = f["ticker"]
    q = v.pick("q", [f"Where could {t} trade in 90 days?", f"What is the {t} price forecast?",
                     f"What does the model project for {t}?",
                     f"What is the 90-day outlook for {t}?",
                     f"Where might {t} be in three months?"])
    a = (v.pick("lead", [f"The model's central estimate for {h['date']}, 90 trading days "
                         "ahead, is",
                         f"For {h['date']} the projection centres on",
                         f"Ninety sessions out ({h['date']}) the midpoint is",
                         f"By {h['date']} the statistical model points to"])
         + f" {fmt_money(h['mean'])} ({fmt_pct(h['change'])}), "
         + v.pick("mid", ["with an 80% interval from", "inside an 80% band from",
                          "and 80% of simulated paths end between"])
         + f" {fmt_money(h['lower80'])} {v.pick('to', ['to', 'and'])} "
         f"{fmt_money(h['upper80'])}. "
         + v.pick("a", ["It is a statistical projection, not a prediction.",
                        "The interval matters more than the midpoint.",
                        "Treat it as a range of outcomes, not a target.",
                        "No model sees news or earnings coming."]))
    return FaqEntry(q, a)


def _risk(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    risk, t = f["risk"], f["ticker"]
    if risk.get("volatility") is None:
        return None
    q = v.pick("q", [f"How volatile is {t}?", f"How risky is {t} stock?",
                     f"How much does {t} swing?", f"What is {t}'s worst drawdown?"])
    a = (v.pick("a", ["Its annualised volatility over the last year is",
                      f"Over twelve months {t} showed annualised volatility of",
                      "Measured over a year, volatility runs at",
                      f"{t}'s one-year annualised volatility comes to"])
         + f" {fmt_pct(risk['volatility'], 1, False)}"
         + v.pick("b", [", and its deepest fall from a high in",
                        "; the worst peak-to-trough drop in",
                        ", while the largest drawdown over"])
         + f" {f['years']} years "
         + v.pick("c", ["was", "reached", "came to"])
         + f" {fmt_pct(risk['max_drawdown'])}.")
    return FaqEntry(q, a)


def _range52(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    r, t = f["range52"], f["ticker"]
    if r.get("low") is None or r.get("high") is None:
        return None
    q = v.pick("q", [f"How far is {t} from its 52-week high?",
                     f"Where does {t} stand in its 52-week range?",
                     f"Is {t} near its one-year high or low?",
                     f"What is {t}'s 52-week range?"])
    a = (v.pick("a", ["The 52-week range runs from", "Over 52 weeks the price has spanned",
                      "In the past year the stock traded from",
                      "The one-year low and high are"])
         + f" {fmt_money(r['low'])} {v.pick('to', ['to', 'up to'])} {fmt_money(r['high'])}"
         + v.pick("b", [f"; at {fmt_money(f['last_close'])} the stock is",
                        f", so the close of {fmt_money(f['last_close'])} stands",
                        f". Today's {fmt_money(f['last_close'])} puts it"])
         + f" {fmt_num(r['position'] * 100, 0)}% "
         + v.pick("c", ["of the way from the low to the high.", "up the range.",
                        "of the distance from low to high."]))
    return FaqEntry(q, a)


def _valuation(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    val, t = f.get("valuation") or {}, f["ticker"]
    if not val.get("trailing_pe") and not val.get("market_cap"):
        return None
    q = v.pick("q", [f"What is {t}'s P/E ratio?", f"How is {t} valued?",
                     f"Is {t} expensive on earnings?", f"What is {t}'s market cap?"])
    parts = []
    if val.get("market_cap"):
        parts.append(v.pick("cap", ["The market values the company at",
                                    "Its market capitalisation is"])
                     + f" {fmt_big_money(val['market_cap'])}.")
    if val.get("trailing_pe"):
        forward = f" and {fmt_num(val['forward_pe'], 1)} on expected earnings" \
            if val.get("forward_pe") else ""
        parts.append(v.pick("pe", ["The shares trade at", "Investors pay"])
                     + f" {fmt_num(val['trailing_pe'], 1)} times trailing earnings{forward}.")
    if val.get("price_to_sales"):
        parts.append(f"The price/sales ratio is {fmt_num(val['price_to_sales'], 1)}.")
    return FaqEntry(q, " ".join(parts))


def _dividend(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    d, t = f.get("dividends") or {}, f["ticker"]
    if not d.get("yield_ratio"):
        return None
    q = v.pick("q", [f"Does {t} pay a dividend?", f"What is {t}'s dividend yield?",
                     f"How much does {t} pay in dividends?"])
    a = f"Yes: the dividend yield is {fmt_pct(d['yield_ratio'], 2, False)}"
    if d.get("annual_rate"):
        a += f" ({fmt_money(d['annual_rate'])} a share per year)"
    if d.get("payout_ratio"):
        a += f", {fmt_pct(d['payout_ratio'], 0, False)} of earnings paid out"
    return FaqEntry(q, a + ".")


def _analyst(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    a, t = f.get("analysts"), f["ticker"]
    if not a:
        return None
    q = v.pick("q", [f"What is the analyst price target for {t}?",
                     f"What do analysts expect for {t} stock?",
                     f"Where do analysts see {t} going?"])
    answer = f"{a['analysts']} analysts set a mean target of {fmt_money(a['mean'])}"
    if a.get("upside") is not None:
        answer += f", {fmt_pct(a['upside'])} from the last close"
    if a.get("low") and a.get("high"):
        answer += f" (from {fmt_money(a['low'])} to {fmt_money(a['high'])})"
    answer += "."
    if a.get("recommendation"):
        answer += f" The consensus rating is {a['recommendation']}."
    return FaqEntry(q, answer)


def _benchmark(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    b, t = f.get("benchmark"), f["ticker"]
    if not b:
        return None
    q = v.pick("q", [f"How has {t} done against {b['symbol']}?",
                     f"Has {t} beaten {b['symbol']}?", f"What is {t}'s beta?"])
    verb = "beat" if b["relative"] >= 0 else "lagged"
    return FaqEntry(q, f"From {b['start']} to {b['end']} {t} returned "
                       f"{fmt_pct(b['stock_return'])} against {fmt_pct(b['benchmark_return'])} "
                       f"for {b['symbol']}: it {verb} it by "
                       f"{fmt_num(abs(b['relative_points']), 1)} percentage points, with a beta "
                       f"of {fmt_num(b['beta'])} and a correlation of "
                       f"{fmt_num(b['correlation'])}.")


STOCK_QUESTIONS: dict[str, Question] = {"trend": _trend, "rsi": _rsi, "range90": _range90,
                                        "forecast": _forecast, "risk": _risk,
                                        "range52": _range52, "valuation": _valuation,
                                        "dividend": _dividend, "analyst": _analyst,
                                        "benchmark": _benchmark}


def _earnings_date(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    t = f["ticker"]
    if f["article_type"] == "preview":
        q = v.pick("q", [f"When does {t} report earnings?", f"When is {t}'s next earnings date?"])
        hour = f" {f['hour_text']}" if f.get("hour_text") else ""
        return FaqEntry(q, f"{f['name']} ({t}) is scheduled to report on "
                           f"{f['report_date_long']}{hour}.")
    q = v.pick("q", [f"When did {t} report earnings?", f"When were {t}'s latest results?"])
    return FaqEntry(q, f"{t} reported {f['latest']['period']} results on "
                       f"{f['report_date_long']}.")


def _earnings_consensus(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    t = f["ticker"]
    if f["article_type"] == "preview":
        if f["next_eps_estimate"] == "n/a":
            return None
        q = v.pick("q", [f"What EPS do analysts expect from {t}?",
                         f"What is the consensus estimate for {t}?"])
        revenue = f" on revenue of {f['next_revenue_estimate']}" \
            if f["next_revenue_estimate"] != "n/a" else ""
        return FaqEntry(q, f"The consensus calls for EPS of {f['next_eps_estimate']}{revenue}, "
                           f"against {f['latest']['eps_actual']} reported for "
                           f"{f['latest']['period']}.")
    q = v.pick("q", [f"Did {t} beat earnings estimates?", f"How did {t}'s EPS compare with "
                                                           "estimates?"])
    return FaqEntry(q, f"{t} {f['verdict_verb']} the estimate: EPS of "
                       f"{f['latest']['eps_actual']} against {f['latest']['eps_estimate']} "
                       f"expected ({f['latest']['surprise']} surprise).")


def _earnings_record(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    t = f["ticker"]
    q = v.pick("q", [f"How often does {t} beat estimates?", f"What is {t}'s earnings track "
                                                             "record?"])
    average = f", with an average surprise of {f['avg_surprise']}" \
        if f["avg_surprise"] != "n/a" else ""
    return FaqEntry(q, f"{t} beat the EPS estimate in {f['beats']} of the last "
                       f"{f['quarter_count']} quarters{average}.")


def _earnings_revenue(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    t = f["ticker"]
    if f["latest"]["revenue"] == "n/a":
        return None
    q = v.pick("q", [f"How fast is {t}'s revenue growing?", f"What was {t}'s latest revenue?"])
    growth = f", {f['growth_yoy']} year over year" if f["growth_yoy"] != "n/a" else ""
    return FaqEntry(q, f"Revenue in {f['latest']['period']} was {f['latest']['revenue']}"
                       f"{growth}.")


def _earnings_margins(f: Mapping[str, Any], v: Variants) -> FaqEntry | None:
    t = f["ticker"]
    if f["net_margin"] == "n/a":
        return None
    q = v.pick("q", [f"What are {t}'s profit margins?", f"How profitable is {t}?"])
    return FaqEntry(q, f"Over the trailing twelve months: gross margin {f['gross_margin']}, "
                       f"operating margin {f['operating_margin']}, net margin "
                       f"{f['net_margin']}.")


EARNINGS_QUESTIONS: dict[str, Question] = {
    "date": _earnings_date, "consensus": _earnings_consensus, "record": _earnings_record,
    "revenue": _earnings_revenue, "margins": _earnings_margins}


def build_faq(facts: Mapping[str, Any], v: Variants, questions: Mapping[str, Question]
              ) -> list[FaqEntry]:
    """Three to five entries: the questions the facts can answer, in a seeded order."""
    answered = [(name, ask(facts, v.sub(f"faq-{name}"))) for name, ask in questions.items()]
    available = {name: entry for name, entry in answered if entry is not None}
    count = min(len(available), MIN_QUESTIONS + v("faq-count", MAX_QUESTIONS - MIN_QUESTIONS + 1))
    return [available[name] for name in v.order("faq-order", list(available))[:count]]


def faq_dicts(entries: list[FaqEntry]) -> list[dict[str, str]]:
    """The entries as the templates and report files take them."""
    return [{"question": e.question, "answer": e.answer} for e in entries]
