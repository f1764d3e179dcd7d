"""Password reset by email through a real SMTP server: the same answer for every address, a
signed link that works once and expires, every session signed out after it; without SMTP the
page says reset by email is not set up."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.password_reset import SENT_MESSAGE
from tests.accounts.conftest import PASSWORD, store_of
from tests.conftest import AuthActions, csrf_token

NEW_PASSWORD = "battery-staple-2"
LINK_RE = re.compile(r"http://localhost(/reset-password/[A-Za-z0-9_.\-]+)")


@pytest.fixture
def mail_app(make_app: Callable[..., Flask], mailbox: Any) -> Flask:
    return make_app(TICKZEN_SMTP_URL=mailbox.url, TICKZEN_MAIL_FROM="TickZen <tz@example.com>")


def _forgot(client: FlaskClient, email: str) -> Any:
    return client.post("/forgot-password", data={
        "email": email, "csrf_token": csrf_token(client, "/forgot-password")})


def _link(message: Any) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = LINK_RE.search(body)
    assert match, body
    return match.group(1)


def _reset(client: FlaskClient, path: str, password: str = NEW_PASSWORD,
           confirm: str | None = None) -> Any:
    token = csrf_token(client, "/forgot-password")
    return client.post(path, data={"password": password,
                                   "confirm_password": password if confirm is None else confirm,
                                   "csrf_token": token})


def _signed_up(app: Flask, email: str = "ann@example.com") -> tuple[FlaskClient, str]:
    client = app.test_client()
    uid = AuthActions(client).signed_in(email)
    return client, uid


def test_reset_by_email_end_to_end(mail_app: Flask, mailbox: Any) -> None:
    signed_in, uid = _signed_up(mail_app)
    client = mail_app.test_client()
    answer = _forgot(client, "  ANN@example.com ")
    assert answer.status_code == 200
    assert "If an account exists for that" in answer.get_data(as_text=True)
    message = mailbox.wait_for(1)[0]
    assert message["To"] == "ann@example.com"
    assert message["From"] == "TickZen <tz@example.com>"
    path = _link(message)
    assert client.get(path).status_code == 200

    done = _reset(client, path)
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    assert signed_in.get("/api/runs").status_code == 401     # every session signed out
    auth = AuthActions(client)
    assert auth.login("ann@example.com").status_code == 400
    assert auth.login("ann@example.com", NEW_PASSWORD).status_code == 302
    assert store_of(mail_app).get_user(uid).session_version == 1

    # Used once: the same link is dead now, for a form view and a post alike.
    again = mail_app.test_client()
    assert again.get(path).status_code == 400
    assert "invalid, expired or already" in again.get(path).get_data(as_text=True)
    assert _reset(again, path, "another-pass-3").status_code == 400
    assert AuthActions(again).login("ann@example.com", NEW_PASSWORD).status_code == 302


def test_same_answer_for_unknown_addresses_and_no_email(mail_app: Flask,
                                                        mailbox: Any) -> None:
    _signed_up(mail_app)
    client = mail_app.test_client()
    known = _forgot(client, "ann@example.com").get_data(as_text=True)
    unknown = _forgot(client, "nobody@example.com").get_data(as_text=True)
    strip = re.compile(r'name="csrf-token" content="[^"]+"')
    assert strip.sub("", known) == strip.sub("", unknown)
    mailbox.wait_for(1)
    time.sleep(0.5)                    # give a wrongly sent second message the time to arrive
    assert [m["To"] for m in mailbox.messages] == ["ann@example.com"]
    assert SENT_MESSAGE.split(",")[0] in known.replace("\n    ", " ")


def test_malformed_address_is_a_form_error(mail_app: Flask, mailbox: Any) -> None:
    client = mail_app.test_client()
    for email in ("", "not-an-email", "a@b", "x" * 300 + "@example.com"):
        response = _forgot(client, email)
        assert response.status_code == 400, email
    assert mailbox.messages == []


def test_reset_form_errors_change_nothing(mail_app: Flask, mailbox: Any) -> None:
    _, uid = _signed_up(mail_app)
    client = mail_app.test_client()
    _forgot(client, "ann@example.com")
    path = _link(mailbox.wait_for(1)[0])
    before = store_of(mail_app).get_user(uid).password_hash
    short = _reset(client, path, "short")
    assert short.status_code == 400 and "at least 8" in short.get_data(as_text=True)
    mismatch = _reset(client, path, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert mismatch.status_code == 400 and "do not match" in mismatch.get_data(as_text=True)
    assert store_of(mail_app).get_user(uid).password_hash == before
    assert _reset(client, path).status_code == 302          # the link still works after


def test_forged_and_tampered_links_are_refused(mail_app: Flask, mailbox: Any) -> None:
    _, uid = _signed_up(mail_app)
    client = mail_app.test_client()
    _forgot(client, "ann@example.com")
    path = _link(mailbox.wait_for(1)[0])
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (tampered, "forged", "x" * 2000, token[: len(token) // 2]):
        assert client.get(f"/reset-password/{bad}").status_code == 400
        assert _reset(client, f"/reset-password/{bad}").status_code == 400
    with mail_app.app_context():          # signed with another key: forged
        from itsdangerous import URLSafeTimedSerializer

        other = URLSafeTimedSerializer("another-key", salt="tickzen-password-reset").dumps(
            {"u": uid, "f": "x"})
    assert client.get(f"/reset-password/{other}").status_code == 400
    assert store_of(mail_app).get_user(uid).session_version == 0


@pytest.mark.app_config(TICKZEN_RESET_TOKEN_MINUTES=0)
def test_expired_link_is_refused(app: Flask) -> None:
    from portal.password_reset import make_token

    _, uid = _signed_up(app)
    with app.app_context():
        token = make_token(store_of(app).get_user(uid))
    time.sleep(1.1)                        # a link of 0 minutes is expired a second later
    client = app.test_client()
    assert client.get(f"/reset-password/{token}").status_code == 400
    assert _reset(client, f"/reset-password/{token}").status_code == 400


def test_a_password_change_kills_an_outstanding_link(mail_app: Flask, mailbox: Any) -> None:
    signed_in, _ = _signed_up(mail_app)
    client = mail_app.test_client()
    _forgot(client, "ann@example.com")
    path = _link(mailbox.wait_for(1)[0])
    auth = AuthActions(signed_in)
    changed = signed_in.post("/api/account/password", headers=auth.headers(), json={
        "current_password": PASSWORD, "password": "changed-meanwhile-1"})
    assert changed.status_code == 200
    assert client.get(path).status_code == 400


def test_without_smtp_the_page_says_reset_is_not_set_up(client: FlaskClient) -> None:
    page = client.get("/forgot-password")
    assert page.status_code == 200
    assert "Reset by email is not set up" in page.get_data(as_text=True)
    posted = client.post("/forgot-password", data={
        "email": "ann@example.com", "csrf_token": csrf_token(client, "/forgot-password")})
    assert posted.status_code == 400
    assert "not set up" in posted.get_data(as_text=True)
    assert "Forgot your password?" in client.get("/login").get_data(as_text=True)


@pytest.mark.app_config(LOGIN_RATE_LIMIT="2 per minute")
def test_forgot_password_is_rate_limited(client: FlaskClient) -> None:
    statuses = [client.post("/forgot-password", data={
        "email": "ann@example.com", "csrf_token": csrf_token(client, "/forgot-password")}
    ).status_code for _ in range(3)]
    assert statuses[-1] == 429
