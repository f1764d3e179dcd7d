"""Accounts: the happy path, every bad input (form error, 400, nothing stored), CSRF, `next`,
the login rate limit."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.services import services
from tests.conftest import AuthActions


def store(app: Flask):
    with app.app_context():
        return services().store


def user_count(app: Flask, *emails: str) -> int:
    s = store(app)
    return sum(1 for email in emails if s.get_user_by_email(email) is not None)


def test_register_login_logout(client: FlaskClient, auth: AuthActions, app: Flask) -> None:
    assert client.get("/register").status_code == 200
    response = auth.register("  New.User@Example.COM ", "correct-horse-1")
    assert response.status_code == 302
    assert response.location == "/"
    record = store(app).get_user_by_email("new.user@example.com")
    assert record is not None
    assert record.password_hash != "correct-horse-1"
    assert record.password_hash.startswith(("scrypt:", "pbkdf2:"))

    page = client.get("/")
    assert page.status_code == 200
    assert "new.user@example.com" in page.get_data(as_text=True)
    assert "Sign out" in page.get_data(as_text=True)

    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302          # signed out: dashboard wants a login

    response = auth.login("NEW.USER@example.com ", "correct-horse-1")
    assert response.status_code == 302 and response.location == "/"
    assert client.get("/").status_code == 200


def test_logout_get_changes_nothing(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    page = client.get("/logout")
    assert page.status_code == 200
    assert 'action="/logout"' in page.get_data(as_text=True)
    assert client.get("/").status_code == 200          # still signed in


@pytest.mark.parametrize(
    ("email", "password", "confirm", "message"),
    [
        ("", "correct-horse-1", None, "Email is required."),
        ("not-an-email", "correct-horse-1", None, "Enter a valid email address."),
        ("a@b", "correct-horse-1", None, "Enter a valid email address."),
        ("x" * 250 + "@example.com", "correct-horse-1", None, "at most 254 characters"),
        ("short@example.com", "", None, "Password is required."),
        ("short@example.com", "seven77", None, "at least 8 characters"),
        ("long@example.com", "p" * 129, None, "at most 128 characters"),
        ("mismatch@example.com", "correct-horse-1", "correct-horse-2", "do not match"),
        ("noconfirm@example.com", "correct-horse-1", "", "Confirm your password."),
    ],
)
def test_register_bad_input(client: FlaskClient, auth: AuthActions, app: Flask, email: str,
                            password: str, confirm: str | None, message: str) -> None:
    response = auth.register(email, password, confirm)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body
    assert 'name="csrf_token"' in body                  # the form is shown again
    assert user_count(app, email.strip().lower()) == 0
    assert client.get("/").status_code == 302           # nobody got signed in


def test_register_keeps_the_email_in_the_form(auth: AuthActions) -> None:
    response = auth.register("keep@example.com", "short")
    assert response.status_code == 400
    assert 'value="keep@example.com"' in response.get_data(as_text=True)


def test_register_escapes_what_it_echoes(auth: AuthActions) -> None:
    response = auth.register('"><script>alert(1)</script>@x.io', "correct-horse-1", "nope")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in body


@pytest.mark.parametrize("second", ["dup@example.com", "DUP@Example.com", "  dup@example.COM"])
def test_register_duplicate_email(client: FlaskClient, auth: AuthActions, app: Flask,
                                  second: str) -> None:
    auth.register("dup@example.com", "correct-horse-1")
    auth.logout()
    original = store(app).get_user_by_email("dup@example.com")
    response = auth.register(second, "another-pass-2")
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    again = store(app).get_user_by_email("dup@example.com")
    assert again.id == original.id and again.password_hash == original.password_hash
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("", "whatever-123", "Email is required."),
        ("user@example.com", "", "Password is required."),
        ("not-an-email", "whatever-123", "Enter a valid email address."),
        ("user@example.com", "p" * 129, "at most 128 characters"),
        ("user@example.com", "wrong-password", "Wrong email or password."),
        ("nobody@example.com", "correct-horse-1", "Wrong email or password."),
    ],
)
def test_login_bad_input(client: FlaskClient, auth: AuthActions, email: str, password: str,
                         message: str) -> None:
    auth.register("user@example.com", "correct-horse-1")
    auth.logout()
    response = auth.login(email, password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_form_without_csrf_is_refused(client: FlaskClient, app: Flask) -> None:
    response = client.post("/register", data={
        "email": "csrf@example.com", "password": "correct-horse-1",
        "confirm_password": "correct-horse-1"})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert user_count(app, "csrf@example.com") == 0

    response = client.post("/register", data={
        "email": "csrf@example.com", "password": "correct-horse-1",
        "confirm_password": "correct-horse-1", "csrf_token": "forged"})
    assert response.status_code == 400
    assert user_count(app, "csrf@example.com") == 0


def test_logout_without_csrf_keeps_the_session(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_json_write_needs_the_csrf_header(make_app) -> None:
    app = make_app()

    @app.post("/api/probe")
    def probe():
        return {"ok": True}

    client = app.test_client()
    auth = AuthActions(client)
    auth.signed_in()
    response = client.post("/api/probe", json={"x": 1})
    assert response.status_code == 400
    assert response.is_json and "CSRF" in response.get_json()["error"]
    response = client.post("/api/probe", json={"x": 1}, headers={"X-CSRFToken": "forged"})
    assert response.status_code == 400 and response.is_json
    response = client.post("/api/probe", json={"x": 1}, headers=auth.headers())
    assert response.status_code == 200 and response.get_json() == {"ok": True}


@pytest.mark.parametrize("target", ["/sites", "/runs/abc?tab=items"])
def test_login_follows_a_local_next(auth: AuthActions, target: str) -> None:
    auth.register()
    auth.logout()
    response = auth.login(next=target)
    assert response.status_code == 302
    assert response.location == target


@pytest.mark.parametrize("target", [
    "//evil.com", "//evil.com/path", "http://evil.com", "https://evil.com/x",
    "/\\evil.com", "\\\\evil.com", "javascript:alert(1)", "evil.com", "/\t/evil.com",
    "///evil.com", "/\r\n/evil.com"])
def test_login_refuses_an_open_redirect(auth: AuthActions, target: str) -> None:
    auth.register()
    auth.logout()
    response = auth.login(next=target)
    assert response.status_code == 302
    assert response.location == "/"


def test_login_page_keeps_next_for_the_form(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    page = client.get(response.location)
    assert 'name="next" value="/"' in page.get_data(as_text=True)
    evil = client.get("/login?next=//evil.com")
    assert "evil.com" not in evil.get_data(as_text=True)


@pytest.mark.app_config(LOGIN_RATE_LIMIT="3 per minute")
def test_login_is_rate_limited(client: FlaskClient, auth: AuthActions) -> None:
    auth.register()
    auth.logout()
    for _ in range(3):
        assert auth.login(password="wrong-password").status_code == 400
    response = auth.login()                              # even the right password now waits
    assert response.status_code == 429
    body = response.get_data(as_text=True)
    assert "Too many attempts" in body and "Traceback" not in body
    assert client.get("/").status_code == 302            # not signed in
    assert client.get("/login").status_code == 200       # GET is not limited


def test_session_cookie_flags_in_testing(client: FlaskClient, auth: AuthActions) -> None:
    response = auth.register()
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_unknown_user_in_session_is_signed_out(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    with client.session_transaction() as session:
        session["_user_id"] = "no-such-user"
    assert client.get("/").status_code == 302


def test_login_limit_is_shared_through_redis(make_app, redis_url: str) -> None:
    """With RATELIMIT_STORAGE_URI on Redis, a second instance sees the first one's count."""
    import secrets

    config = {"RATELIMIT_STORAGE_URI": redis_url, "LOGIN_RATE_LIMIT": "3 per minute",
              "RATELIMIT_KEY_PREFIX": f"test-{secrets.token_hex(4)}"}
    first = AuthActions(make_app(**config).test_client())
    for _ in range(2):
        assert first.login("someone@example.com", "wrong-password").status_code == 400
    second = AuthActions(make_app(**config).test_client())     # another instance, same Redis
    assert second.login("someone@example.com", "wrong-password").status_code == 400
    assert second.login("someone@example.com", "wrong-password").status_code == 429


def test_registration_gives_the_user_a_local_archive_site(client: FlaskClient,
                                                          auth: AuthActions, app: Flask) -> None:
    user_id = auth.signed_in("starter@example.com")
    sites = store(app).list_sites(user_id)
    assert [(s.name, s.kind, s.url, s.app_password_enc) for s in sites] == [
        ("Local archive", "local", "", "")]
    listed = client.get("/api/sites").get_json()["sites"]
    assert [(s["id"], s["name"], s["kind"]) for s in listed] == [
        (sites[0].id, "Local archive", "local")]
    # a refused second registration with the same email adds no site to anyone
    other = AuthActions(app.test_client())
    assert other.register("starter@example.com", "correct-horse-2").status_code == 400
    assert len(store(app).list_sites(user_id)) == 1


def test_a_new_user_runs_a_demo_stock_automation_without_set_up(make_app, tmp_path) -> None:
    import re
    import time

    app = make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                   TICKZEN_WORKDIR=str(tmp_path / "work"),
                   TICKZEN_AUTOMATION_MODULES="automation_scripts.stock")
    client = app.test_client()
    auth = AuthActions(client)
    auth.signed_in("first-run@example.com")
    page = client.get("/automation/stock").get_data(as_text=True)
    options = re.findall(r'<select id="site" name="site_id"[^>]*>(.*?)</select>', page, re.S)
    assert options and "disabled" not in page.split('id="start-run"')[1].split(">")[0]
    [(site_id, label)] = re.findall(r'<option value="([^"]+)">([^<]+)</option>', options[0])
    assert label == "Local archive (local)"
    answer = client.post("/api/runs", headers=auth.headers(),
                         json={"kind": "stock", "site_id": site_id, "items": ["AAPL"],
                               "options": {"data_source": "demo"}})
    assert answer.status_code == 202, answer.get_json()
    run_id = answer.get_json()["run_id"]
    deadline = time.monotonic() + 120
    run = client.get(f"/api/runs/{run_id}").get_json()
    while run["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
        run = client.get(f"/api/runs/{run_id}").get_json()
    assert run["status"] == "completed"
    [item] = run["items"]
    assert item["status"] == "published", item
    post = client.get(item["post_url"])
    assert post.status_code == 200 and "AAPL" in post.get_data(as_text=True)
