"""The failure-cause classifier against the texts the code really writes: WordPress answers and
transport errors made by the publisher's own mapping, the runner's readable() of builtin
errors, and the providers' and the ledger's messages as they are formatted."""

from __future__ import annotations

import json

import pytest
import requests

from automation_scripts.publishing.wordpress_client import _transport_error, error_for_response
from runner.failure_causes import CAUSE_KEYS, CAUSES, cause_of, count_causes
from runner.worker import readable

URL = "https://blog.example.com/wp-json/wp/v2/posts"


def answer(status: int, code: str = "", message: str = "") -> requests.Response:
    """A real requests.Response as WordPress would send it."""
    response = requests.Response()
    response.status_code = status
    response.url = URL
    response.headers["Content-Type"] = "application/json; charset=UTF-8"
    body = {"code": code, "message": message, "data": {"status": status}} if code else {}
    response._content = json.dumps(body).encode()
    return response


def wordpress(status: int, code: str = "", message: str = "", **kw: bool) -> str:
    return readable(error_for_response(answer(status, code, message), **kw))


def transport(exc: requests.RequestException) -> str:
    return readable(_transport_error(exc, URL))


@pytest.mark.parametrize(("text", "cause"), [
    (wordpress(401, "incorrect_password", "The password is wrong."), "auth"),
    (wordpress(401, "rest_not_logged_in", "You are not logged in."), "auth"),
    (wordpress(401, sent_credentials=False), "auth"),
    (wordpress(403, "rest_cannot_create", "Sorry, you are not allowed."), "auth"),
    ("a stored secret cannot be decrypted: TICKZEN_SECRETS_KEY differs from the key it was "
     "encrypted with (re-enter the site's application password)", "auth"),
    ("finnhub refused the API key", "auth"),
    ("the daily limit of 5 posts for site 'Blog' is used up (site s1 has 5 of 5 posts on "
     "2026-11-25)", "daily_limit"),
    (transport(requests.Timeout("read timed out")), "network"),
    (transport(requests.ConnectionError("[Errno 111] Connection refused")), "network"),
    (transport(requests.ConnectionError("Name or service not known")), "network"),
    (transport(requests.ConnectionError("Connection aborted.")), "network"),
    (transport(requests.exceptions.SSLError("certificate verify failed")), "network"),
    (wordpress(503, "", ""), "network"),
    (wordpress(429, "too_many", "Slow down"), "network"),
    (readable(TimeoutError("timed out")), "network"),
    (readable(ConnectionResetError("reset by peer")), "network"),
    ("Yahoo Finance is unreachable from this server (offline?): ConnectionError", "network"),
    ("Yahoo Finance did not answer within 10 s for AAPL", "network"),
    ("finnhub rate limit reached; try again in a minute", "network"),
    ("the feed did not answer in time", "network"),
    ("Yahoo Finance has no price data for 'ZZZZ' (delisted or a typo?)", "data"),
    ("no prices for KVUE in the uploaded price file or TICKZEN_CSV_DIR", "data"),
    ("AAPL: only 20 trading days of prices; at least 60 are needed", "data"),
    ("MSFT: results for 2026-11-20 are not available yet", "data"),
    ("the earnings calendar file has no 'calendar' object", "data"),
    ("not a valid RSS/Atom feed (mismatched tag)", "data"),
    (wordpress(400, "rest_invalid_param", "Invalid parameter(s): status"), "other"),
    (wordpress(404, "rest_no_route", "No route was found."), "other"),
    ("example.com-stock: another worker kept the reservation", "other"),
    (readable(KeyError("x")), "other"),
    ("", "other"),
    (None, "other"),
])
def test_each_text_has_its_cause(text: str | None, cause: str) -> None:
    assert cause_of(text) == cause, text


def test_counts_per_cause_in_order_with_zeros() -> None:
    counts = count_causes([("WordPress rejected the username or application password", 2),
                           ("the feed did not answer in time", 3), ("who knows", 1),
                           (None, 1)])
    assert list(counts) == list(CAUSE_KEYS) == [c.key for c in CAUSES]
    assert counts == {"daily_limit": 0, "auth": 2, "network": 3, "data": 0, "other": 2}
    assert count_causes([]) == dict.fromkeys(CAUSE_KEYS, 0)
