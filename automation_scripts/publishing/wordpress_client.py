"""The WordPress REST client: requests with tenacity retries (Retry-After honoured, for the
whole site through its gate), the error tree a WordPress answer maps to, and the connection
check the sites page runs."""

from __future__ import annotations

import html as _html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from automation_scripts.publishing import (
    AuthError,
    NotFoundError,
    PermissionDenied,
    PublishError,
    TLSError,
    TransientError,
    with_code,
)
from automation_scripts.publishing.site_gate import SiteGate

log = logging.getLogger(__name__)

_BAD_CREDENTIAL_CODES = ("incorrect_password", "invalid_username", "invalid_email",
                         "application_passwords_disabled",
                         "application_passwords_disabled_for_user")
AUTH_HEADER_HINT = (
    "If the username and application password are right, the web server is stripping the "
    "Authorization header before WordPress sees it: on Apache add "
    "'SetEnvIf Authorization \"(.*)\" HTTP_AUTHORIZATION=$1' to .htaccess; on nginx add "
    "'fastcgi_param HTTP_AUTHORIZATION $http_authorization;' to the PHP location.")









class _Retryable(Exception):
    """Internal: an answer worth retrying (429 / 5xx), carrying Retry-After if any."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = _retry_after(response)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class RetryPolicy:
    """How often and how long the client retries transient failures."""

    attempts: int = 4               # total tries per request
    backoff: float = 0.5            # exponential base (seconds) for jittered waits
    max_wait: float = 30.0          # cap for one wait (also caps Retry-After)
    sleep: Callable[[float], None] = time.sleep


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "").lower()


def _error_body(response: requests.Response) -> tuple[str, str, dict[str, Any]]:
    """(code, message, data) of a WordPress REST error answer (empty when it is not JSON)."""
    if not _is_json(response):
        return "", "", {}
    try:
        body = response.json()
    except ValueError:
        return "", "", {}
    if not isinstance(body, dict):
        return "", "", {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    return (str(body.get("code") or ""), _html.unescape(str(body.get("message") or "")),
            data)


def error_for_response(response: requests.Response, *, sent_credentials: bool = True
                       ) -> PublishError:
    """Map a non-2xx WordPress answer into the PublishError tree (by type, not by string)."""
    status = response.status_code
    code, message, data = _error_body(response)
    detail = f" ({status} {code}: {message})" if code else f" (HTTP {status})"
    if status == 401:
        if code in _BAD_CREDENTIAL_CODES:
            return with_code(AuthError(
                "WordPress rejected the username or application password" + detail),
                "bad_credentials", status)
        if sent_credentials:
            return with_code(AuthError(
                "WordPress did not accept the login" + detail + ". Check the username and "
                "application password. " + AUTH_HEADER_HINT), "not_authenticated", status)
        return with_code(AuthError("WordPress requires a login" + detail), "no_credentials",
                          status)
    if status == 403:
        return with_code(PermissionDenied(
            "this WordPress user may not do that" + detail), "forbidden", status)
    if status == 404:
        if code:
            return with_code(NotFoundError(
                "WordPress REST route not found" + detail), "rest_not_found", status)
        return with_code(NotFoundError(
            "the REST API was not found at this URL (HTTP 404, not a WordPress JSON answer): "
            "check the site URL, and that the REST API is not disabled"), "rest_not_found", status)
    if status == 429 or status >= 500:
        exc = with_code(TransientError(f"WordPress is unavailable right now{detail}"),
                         "transient", status)
        exc.retry_after = _retry_after(response)      # type: ignore[attr-defined]
        return exc
    exc = with_code(PublishError(f"WordPress refused the request{detail}"),
                     code or "refused", status)
    if code == "term_exists":
        exc.term_id = data.get("term_id")             # type: ignore[attr-defined]
    return exc


def _transport_error(exc: requests.RequestException, url: str) -> PublishError:
    host = urlsplit(url).netloc
    if isinstance(exc, requests.exceptions.SSLError):
        return with_code(TLSError(
            f"TLS/HTTPS error talking to {host}: the certificate is not valid or the "
            "handshake failed"), "tls_error")
    if isinstance(exc, requests.Timeout):
        return with_code(TransientError(f"{host} did not answer in time (timeout)"), "timeout")
    text = str(exc)
    if "refused" in text.lower():
        return with_code(TransientError(f"connection to {host} refused: is the site up and "
                                         "the URL right?"), "connection_refused")
    if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
        return with_code(TransientError(f"host {host} cannot be resolved"), "dns_error")
    return with_code(TransientError(f"connection to {host} failed or was dropped"),
                      "connection_error")


class WordPressClient:
    """Minimal WordPress REST client: authenticated JSON calls with retries on transients.

    Retries (exponential backoff with jitter, Retry-After honoured) happen on connection errors,
    timeouts, 429 and 5xx, never on other 4xx. ``retry=False`` is for the post-creating POST,
    whose caller must look the slug up before trying again.
    """

    def __init__(self, base_url: str, username: str, app_password: str, *,
                 timeout: tuple[float, float] = (5.0, 30.0), policy: RetryPolicy | None = None,
                 session: requests.Session | None = None, gate: SiteGate | None = None
                 ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._auth = (username, app_password) if username or app_password else None
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        # Shared with the site's other clients: a Retry-After makes all of them wait.
        self.gate = gate or SiteGate()

    def __repr__(self) -> str:            # never show the password
        return f"WordPressClient({self.base_url!r}, user={self.username!r})"

    def url(self, route: str) -> str:
        return f"{self.base_url}/wp-json/wp/v2/{route.lstrip('/')}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return 0.0          # the site's gate waits it out, for every request to the site
        return wait_random_exponential(multiplier=self.policy.backoff,
                                       max=self.policy.max_wait)(state)

    def send(self, method: str, route: str, *, retry: bool = True, **kwargs: Any
             ) -> requests.Response:
        """One REST call; returns the 2xx JSON response or raises a PublishError."""
        url = self.url(route)
        kwargs.setdefault("timeout", self.timeout)
        # Never follow a redirect: its target escaped the SSRF check, and requests would turn
        # a redirected POST into a GET. The user fixes the site URL instead.
        kwargs.setdefault("allow_redirects", False)
        if self._auth:
            kwargs.setdefault("auth", self._auth)

        def once() -> requests.Response:
            self.gate.wait(self.policy.sleep)
            response = self.session.request(method, url, **kwargs)
            if response.status_code == 429 or response.status_code >= 500:
                failed = _Retryable(response)
                if failed.retry_after is not None:
                    self.gate.hold(min(failed.retry_after, self.policy.max_wait))
                raise failed
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts if retry else 1),
            wait=self._wait, sleep=self.policy.sleep, reraise=True,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable) or (
                isinstance(e, requests.RequestException)
                and not isinstance(e, requests.exceptions.SSLError)
                and isinstance(e, (requests.ConnectionError, requests.Timeout)))),
            before_sleep=lambda s: log.info("retrying %s %s after %s", method, route,
                                            s.outcome.exception() if s.outcome else "?"))
        try:
            response = retrying(once)
        except _Retryable as exc:
            raise error_for_response(exc.response) from None
        except requests.RequestException as exc:
            raise _transport_error(exc, url) from exc
        if 300 <= response.status_code < 400:
            target = urlsplit(response.headers.get("Location") or "")
            where = f"{target.scheme}://{target.netloc}" if target.netloc else "another address"
            raise with_code(NotFoundError(
                f"{self.base_url} redirects to {where} (HTTP {response.status_code}): use the "
                "address WordPress really answers on as the site URL"), "redirect",
                response.status_code)
        if not 200 <= response.status_code < 300:
            raise error_for_response(response, sent_credentials=self._auth is not None)
        if not _is_json(response):
            raise with_code(NotFoundError(
                f"{self.base_url} answered with {response.headers.get('Content-Type') or 'no'}"
                " content instead of WordPress REST JSON: check the site URL, and that the "
                "REST API is not disabled"), "not_json", response.status_code)
        return response

    def json(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.send(method, route, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise with_code(NotFoundError("WordPress answered with invalid JSON"),
                             "not_json") from exc


# ---------------------------------------------------------------------------------------------
# Test connection.


@dataclass
class ConnectionCheck:
    """The answer of a site's test-connection: ``ok`` and a message a user can act on."""

    ok: bool
    code: str                       # ok | bad_credentials | not_authenticated | cannot_publish
    message: str                    # | rest_not_found | not_json | tls_error | timeout ...
    user: str = ""
    capabilities: list[str] = field(default_factory=list)


def check_wordpress(client: WordPressClient) -> ConnectionCheck:
    """``users/me?context=edit`` plus a capability check, each failure with its own message."""
    try:
        me = client.json("GET", "users/me", params={"context": "edit"})
    except PublishError as exc:
        return ConnectionCheck(False, getattr(exc, "code", "error"), str(exc))
    caps = me.get("capabilities") or {} if isinstance(me, dict) else {}
    granted = sorted(k for k, v in caps.items() if v) if isinstance(caps, dict) else []
    name = str(me.get("username") or me.get("slug") or client.username) if isinstance(
        me, dict) else client.username
    if "publish_posts" in granted:
        return ConnectionCheck(True, "ok", f"Connected as {name}; this user may publish posts.",
                               name, granted)
    if "edit_posts" in granted:
        return ConnectionCheck(False, "cannot_publish",
                               f"Connected as {name}, but this user may only write drafts for "
                               "review (no publish_posts capability): use an Author, Editor or "
                               "Administrator account, or publish as draft.", name, granted)
    return ConnectionCheck(False, "cannot_publish",
                           f"Connected as {name}, but this user may not write posts "
                           "(no edit_posts capability).", name, granted)
