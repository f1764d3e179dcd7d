"""Pure pieces: sanitising, placeholders, URL checks, error mapping, SecretBox, scheduling."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
import requests

from automation_scripts.publishing import (
    AuthError,
    NotFoundError,
    PermissionDenied,
    PublishError,
    TransientError,
)
from automation_scripts.publishing.safety import (
    replace_image_placeholders,
    sanitize_html,
    url_problem,
)
from automation_scripts.publishing.wordpress_client import error_for_response
from runner.publishing import _schedule_mutation
from storage.secrets import SecretBox, SecretsError


def test_sanitize_keeps_the_allow_list_only():
    dirty = ("<h2>T</h2><p onclick='x'>a <strong>b</strong> <em>c</em></p>"
             "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>d</td></tr></tbody></table>"
             "<ul><li>i</li></ul><blockquote>q</blockquote>"
             "<figure><img src='https://x/a.png' alt='A' onerror='x()'><figcaption>f"
             "</figcaption></figure><a href='https://e.com/'>l</a><a href='javascript:x'>j</a>"
             "<script>alert(1)</script><iframe src='https://e.com'></iframe><style>p{}</style>")
    clean = sanitize_html(dirty)
    for kept in ("<h2>", "<strong>", "<em>", "<table>", "<th>", "<td>", "<li>", "<blockquote>",
                 "<figure>", "<figcaption>", 'alt="A"', 'href="https://e.com/"',
                 'rel="noopener noreferrer nofollow"'):
        assert kept in clean, kept
    for dropped in ("onclick", "onerror", "javascript:", "<script", "<iframe", "<style",
                    "alert(1)"):
        assert dropped not in clean, dropped


def test_placeholders_are_replaced_escaped_and_unknown_ones_dropped():
    html = '<img src="{{image:a.png}}"> {{ image:b.png }} {{image:missing.png}}'
    out = replace_image_placeholders(html, {"a.png": "/x?a=1&b=2", "b.png": "/y\"z"})
    assert out == '<img src="/x?a=1&amp;b=2"> /y&quot;z '


@pytest.mark.parametrize("url, allowed", [
    ("https://example.com", True), ("http://example.com:8080/blog", True),
    ("ftp://example.com", False), ("example.com", False), ("https://u:p@example.com", False),
    ("https://@example.com", False), ("http://", False), ("http://example.com:99999", False),
])
def test_url_shape_rules(url, allowed):
    assert (url_problem(url, allow_private=True) is None) is allowed


def test_every_resolved_address_is_checked():
    mixed = url_problem("https://blog.example", allow_private=False,
                        resolve=lambda host: ["93.184.216.34", "10.0.0.5"])
    assert mixed and "10.0.0.5" in mixed
    public = url_problem("https://blog.example", allow_private=False,
                         resolve=lambda host: ["93.184.216.34"])
    assert public is None
    assert "private" in url_problem("http://[fe80::1]/", allow_private=False)


def _response(status: int, body: bytes, content_type: str = "application/json",
              headers: dict | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.headers.update(headers or {})
    return response


def test_error_mapping_by_type():
    bad = error_for_response(_response(401, b'{"code":"incorrect_password","message":"no"}'))
    assert isinstance(bad, AuthError) and bad.code == "bad_credentials"
    stripped = error_for_response(_response(401, b'{"code":"rest_not_logged_in"}'))
    assert isinstance(stripped, AuthError) and "SetEnvIf" in str(stripped)
    assert isinstance(error_for_response(_response(403, b'{"code":"rest_cannot_create"}')),
                      PermissionDenied)
    assert isinstance(error_for_response(_response(404, b"<html>", "text/html")),
                      NotFoundError)
    limited = error_for_response(_response(429, b"{}", headers={"Retry-After": "12"}))
    assert isinstance(limited, TransientError) and limited.retry_after == 12
    assert isinstance(error_for_response(_response(502, b"bad gateway", "text/plain")),
                      TransientError)
    exists = error_for_response(_response(
        400, b'{"code":"term_exists","data":{"status":400,"term_id":42}}'))
    assert type(exists) is PublishError and exists.term_id == 42 and not exists.retryable


def test_secret_box_round_trip_and_clear_errors(tmp_path):
    box = SecretBox.from_environment(None, tmp_path, allow_generate=True)
    key_file = tmp_path / "secrets_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    token = box.encrypt("abcd efgh")
    assert "abcd" not in token and box.decrypt(token) == "abcd efgh"
    # The same instance folder gives the same key (a restart can still decrypt).
    assert SecretBox.from_environment(None, tmp_path, allow_generate=True).decrypt(token) \
        == "abcd efgh"
    with pytest.raises(SecretsError, match="differs"):
        SecretBox(SecretBox.generate_key()).decrypt(token)
    with pytest.raises(SecretsError, match="not a valid Fernet key"):
        SecretBox("too-short")
    with pytest.raises(SecretsError, match="must be set"):
        SecretBox.from_environment(None, tmp_path / "prod", allow_generate=False)
    assert "key" not in repr(box).lower() or "hidden" in repr(box)


def test_future_schedule_starts_from_the_later_of_now_and_last():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    gap = timedelta(minutes=30)
    first = _schedule_mutation(now, gap)({})
    assert first["last_scheduled"] == (now + gap).isoformat()
    later = _schedule_mutation(now, gap)({"last_scheduled": (now + timedelta(hours=5))
                                          .isoformat(), "author_cursor": 1})
    assert later["last_scheduled"] == (now + timedelta(hours=5, minutes=30)).isoformat()
    assert later["author_cursor"] == 1
    stale = _schedule_mutation(now, gap)({"last_scheduled": (now - timedelta(days=2))
                                          .isoformat()})
    assert stale["last_scheduled"] == (now + gap).isoformat()


def test_the_run_marker_names_the_run_and_the_posts_own_uploads():
    from automation_scripts.publishing.safety import media_of, run_marker, run_of
    marked = "<p>text</p>\n" + run_marker("run-1/../x", [12, 7, 30])
    assert run_of(marked) == "run-1x" and media_of(marked) == [12, 7, 30]
    # A post marked before the marker named its uploads: its run, and no uploads to delete.
    older = "<p>text</p>\n<!-- tickzen-run:run-0 -->"
    assert run_of(older) == "run-0" and media_of(older) == []
    # The last marker counts (a user may paste an old post's text into a new one).
    both = older + "\n" + run_marker("run-2", [5])
    assert run_of(both) == "run-2" and media_of(both) == [5]
    assert run_of("<p>unmarked</p>") == "" and media_of("<p>unmarked</p>") == []
