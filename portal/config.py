"""The environment variables the portal reads (12-factor) and the config classes.

``ENV_VARS`` is the one list of variables, each with its default (the only place a default is
stated): ``load`` puts every default into app.config, then the environment's values (typed), so
everything below the portal, automations included, reads settings, never ``os.environ``. It
runs when the app is built (not at import), so a test or a second app sees the environment as
it is then. The classes hold what differs per environment beyond those defaults (cookies,
testing keys). The README's configuration table is checked against ``ENV_VARS``.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flask import Flask, current_app

from runner.delivery import parse_retry_seconds


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _text(value: str) -> str | None:
    return value or None


def _at_least_one(value: str) -> int:
    count = int(value)
    if count < 1:
        raise ValueError("must be 1 or more")
    return count


def _days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise ValueError("must be 0 or more days")
    return days


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: the config key it sets, its default as the environment would
    spell it ("" = unset), how to parse it, what it is for, and production's default when that
    differs."""

    name: str
    default: str
    parse: Callable[[str], Any]
    help: str
    production: str | None = None

    def default_in(self, env_name: str) -> str:
        if env_name == "production" and self.production is not None:
            return self.production
        return self.default

    @property
    def shown_default(self) -> str:
        """The default as the README's configuration table shows it."""
        shown = self.default or "(unset)"
        return shown if self.production is None else f"{shown} (production: {self.production})"


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("TICKZEN_ENV", "development", str,
           "Which config to use: development, testing or production."),
    EnvVar("HOST", "127.0.0.1", str, "Where `python main_portal_app.py` listens."),
    EnvVar("PORT", "5000", int,
           "Port for `python main_portal_app.py` (startup.sh: 8000, Azure sets it)."),
    EnvVar("SECRET_KEY", "", _text,
           "Signs sessions and CSRF tokens. Required in production; development keeps a "
           "generated one in instance/secret_key."),
    EnvVar("TICKZEN_INSTANCE_PATH", "instance", _text,
           "The instance folder (development keys, SQLite file, uploads, caches, archive); "
           "an absolute path, e.g. on a persistent mount."),
    EnvVar("TICKZEN_STORE", "sqlite:///instance/tickzen.db", str,
           "Store URL: `sqlite:///<path>` (relative paths live under instance/) or "
           "`firestore://<project>`."),
    EnvVar("FIRESTORE_EMULATOR_HOST", "", _text,
           "host:port of a Firestore emulator; the Firestore client uses it when set."),
    EnvVar("TICKZEN_SECRETS_KEY", "", _text,
           "Fernet key that encrypts site app passwords at rest."),
    EnvVar("SOCKETIO_MESSAGE_QUEUE", "", _text,
           "e.g. `redis://host:6379/0`: lets several instances emit to each other's sockets."),
    EnvVar("CORS_ALLOWED_ORIGINS", "", _text,
           "Comma-separated origins allowed to open a Socket.IO connection. Empty: same "
           "origin only."),
    EnvVar("PROGRESS_MAX_PER_SECOND", "2", float,
           "Coalesced `processing` progress events per run per second."),
    EnvVar("TICKZEN_MAX_ITEMS", "500", int, "Most items one run may hold."),
    EnvVar("TICKZEN_MAX_RUNS", "8", int, "Runs processed at once on this instance."),
    EnvVar("TICKZEN_MAX_RUNS_PER_USER", "2", int, "Runs one user may have active at once."),
    EnvVar("TICKZEN_MAX_SITES", "20", _at_least_one,
           "Sites one account may keep (the starter Local archive counts); past it adding "
           "one is refused (409)."),
    EnvVar("TICKZEN_MAX_CAMPAIGNS", "50", _at_least_one,
           "Campaigns one account may keep; past it creating one is refused (409)."),
    EnvVar("TICKZEN_MAX_WEBHOOKS", "20", _at_least_one,
           "Webhooks one account may keep; past it adding one is refused (409)."),
    EnvVar("TICKZEN_MAX_TOKENS", "50", _at_least_one,
           "Personal API tokens one account may hold; past it making one is refused (409)."),
    EnvVar("TICKZEN_MAX_UPLOAD_BYTES", "5242880", _at_least_one,
           "Largest uploaded file (price CSV, ticker CSV/XLSX), in bytes; a larger one is "
           "refused (413). Requests may be this plus 64 KB (at least 10 MB)."),
    EnvVar("TICKZEN_GENERATION_PROCESSES", "", _text,
           "Worker processes that make the articles of CPU-bound automations (stock charts); "
           "unset: one per core but one, at most 2 (each costs ~90 MB); 0: in the run's own "
           "threads."),
    EnvVar("TICKZEN_AUTO_RESUME", "0", _bool,
           "1: resume runs found `interrupted` after a restart without waiting for the user."),
    EnvVar("TICKZEN_CSV_DIR", "", _text,
           "Server-side folder of `<TICKER>.csv` price files for the `csv` data source."),
    EnvVar("TICKZEN_YAHOO_PER_MINUTE", "30", _at_least_one,
           "Most Yahoo Finance price downloads started per minute, counted across the runs "
           "and generation processes that share the instance folder; waits show on the run "
           "page as progress."),
    EnvVar("TICKZEN_PRICE_CACHE_DIR", "instance/cache/prices", _text,
           "Where Yahoo price histories are kept for the US trading day (New York date) they "
           "were downloaded on, shared by runs and by instances on a shared mount; empty: no "
           "cache."),
    EnvVar("TICKZEN_EARNINGS_CALENDAR_FILE", "", _text,
           "Earnings calendar JSON (a Finnhub-style export) for the `file` earnings data "
           "source."),
    EnvVar("TICKZEN_EARNINGS_FUNDAMENTALS_FILE", "", _text,
           "Fundamentals JSON (quarters per ticker) for the `file` earnings data source."),
    EnvVar("FINNHUB_API_KEY", "", _text, "API key for the `finnhub` earnings data source."),
    EnvVar("FINNHUB_API_URL", "https://finnhub.io/api/v1", str,
           "Base URL of the Finnhub API."),
    EnvVar("TICKZEN_PROVIDER_TIMEOUT", "10", float,
           "Seconds an earnings data provider (Finnhub) waits per request."),
    EnvVar("TICKZEN_FEED_TIMEOUT", "10", float,
           "Seconds a sports feed may take to connect and between reads (a whole fetch: "
           "three times that)."),
    EnvVar("TICKZEN_FEED_MAX_BYTES", "2097152", int,
           "Largest sports feed read, in bytes (a bigger one is an error for that feed)."),
    EnvVar("TICKZEN_ALLOW_PRIVATE_URLS", "1", _bool,
           "1: site URLs may point at private/loopback addresses.", production="0"),
    EnvVar("TICKZEN_LLM_BASE_URL", "", _text,
           "OpenAI-compatible endpoint for the optional LLM writer."),
    EnvVar("TICKZEN_LLM_MODEL", "", _text, "Model name for the LLM writer."),
    EnvVar("TICKZEN_LLM_API_KEY", "", _text, "API key for the LLM writer."),
    EnvVar("TICKZEN_LLM_TIMEOUT", "30", float, "Seconds the LLM writer waits per request."),
    EnvVar("TICKZEN_LLM_MAX_CALLS", "100", int,
           "Most LLM calls one run may make; past it the template writer writes the item "
           "and says why. 0: no cap."),
    EnvVar("TICKZEN_WORKDIR", "instance/runs", _text,
           "Scratch folder for per-run files (charts, uploads)."),
    EnvVar("TICKZEN_ARCHIVE_DIR", "instance/archive", _text,
           "Where the built-in local archive site writes its posts."),
    EnvVar("TICKZEN_LEASE_SECONDS", "30", float,
           "How long an instance's lease on a run lasts before another instance may take "
           "it over."),
    EnvVar("TICKZEN_MIN_INTERVAL_SECONDS", "300", int,
           "Shortest campaign interval (and cron spacing) allowed, in seconds."),
    EnvVar("TICKZEN_SCHEDULER_TICK", "1", float,
           "Seconds between the campaign scheduler's looks for due fires."),
    EnvVar("TICKZEN_RETENTION_DAYS", "90", _days,
           "Days a finished run keeps its event log and its workdir (charts, report files); "
           "the run, its items, the ledger and the local archive are kept forever. 0: keep "
           "everything."),
    EnvVar("TICKZEN_AUTOMATION_MODULES", "", _text,
           "Comma-separated product automation packages to load (unset: "
           "`automation_scripts.stock`, `.earnings` and `.sports`)."),
    EnvVar("TICKZEN_EXTRA_AUTOMATIONS", "", _text,
           "Comma-separated extra automation modules (each with `create(settings)`)."),
    EnvVar("RATELIMIT_STORAGE_URI", "memory://", str,
           "Where login rate-limit counters live (`redis://...` to share them between "
           "instances)."),
    EnvVar("LOGIN_RATE_LIMIT", "10 per minute", str,
           "Login attempts (POST /login) allowed per client address; the forgotten-password "
           "and reset forms each allow as many."),
    EnvVar("TICKZEN_TOKEN_RATE_LIMIT", "120 per minute", str,
           "API calls one personal API token may make (counted where the rate limits live)."),
    EnvVar("TICKZEN_RESET_TOKEN_MINUTES", "60", int,
           "Minutes a password reset link stays valid (it also dies once used)."),
    EnvVar("TICKZEN_SMTP_URL", "", _text,
           "`smtp://user:pass@host:port`, `smtps://...` or `smtp+starttls://...`: where "
           "emails (password resets, event emails) go out. Unset: no email."),
    EnvVar("TICKZEN_MAIL_FROM", "TickZen <no-reply@localhost>", str,
           "The From address of the portal's emails."),
    EnvVar("TICKZEN_PUBLIC_URL", "http://127.0.0.1:5000", str,
           "The portal's address as users reach it: the links in event emails and webhook "
           "payloads (set it in production, e.g. `https://portal.example.com`)."),
    EnvVar("TICKZEN_WEBHOOK_RETRY_SECONDS", "10,60,300,1800,7200", parse_retry_seconds,
           "Seconds to wait before each retry of a webhook delivery (network error, timeout, "
           "429, 5xx); after the last the webhook is marked failing."),
    EnvVar("TICKZEN_PROXY_FIX", "0", int,
           "How many reverse proxies to trust for X-Forwarded-For/-Proto (Azure: 1).",
           production="1"),
    EnvVar("WEBSITE_INSTANCE_ID", "", _text,
           "Set by App Service: names this instance in run owners (default: the host name)."),
    EnvVar("GUNICORN_THREADS", "600", int,
           "startup.sh only: gunicorn threads, i.e. the most open WebSockets plus HTTP "
           "headroom."),
    EnvVar("GUNICORN_BIND_HOST", "0.0.0.0", str,
           "startup.sh only: the address gunicorn binds (with `PORT`)."),
)

# Read by the shell/launcher, not put into app.config.
_NOT_APP_CONFIG = {"TICKZEN_ENV", "HOST", "PORT", "FIRESTORE_EMULATOR_HOST", "GUNICORN_THREADS",
                   "GUNICORN_BIND_HOST", "TICKZEN_INSTANCE_PATH", "WEBSITE_INSTANCE_ID"}


# Folders whose default lives in the instance folder ("instance/..." means the app's own).
_IN_INSTANCE = ("TICKZEN_WORKDIR", "TICKZEN_ARCHIVE_DIR", "TICKZEN_PRICE_CACHE_DIR")

# Config keys that code sets, never the environment: objects tests inject, and whether this
# app starts its background threads.
CONFIG_ONLY_KEYS = frozenset({"TICKZEN_STORE_OBJECT", "TICKZEN_PUBLISHING_OBJECT",
                              "TICKZEN_START_RUNNER"})


def _env_var(name: str) -> EnvVar:
    return next(var for var in ENV_VARS if var.name == name)


def defaults(env_name: str = "development") -> dict[str, Any]:
    """The app.config value of every variable when the environment does not set it."""
    return {var.name: var.parse(var.default_in(env_name)) for var in ENV_VARS
            if var.name not in _NOT_APP_CONFIG}


def default_value(name: str, env_name: str = "development") -> Any:
    """One variable's default (typed), for code handed a mapping that may lack it."""
    var = _env_var(name)
    return var.parse(var.default_in(env_name))


class Config:
    """Settings shared by every environment that are not environment variables."""

    ENV_NAME = "development"
    RATELIMIT_ENABLED = True                          # set explicitly: the limiter is shared
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024
    TICKZEN_START_RUNNER = True           # tests may build an app without background threads
    TESTING = False


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    LOGIN_RATE_LIMIT = "1000 per minute"


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True


CONFIGS: dict[str, type[Config]] = {"development": DevelopmentConfig, "testing": TestingConfig,
                                    "production": ProductionConfig}


class ConfigurationError(RuntimeError):
    """The environment cannot run the portal (e.g. production without SECRET_KEY)."""


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The app.config values the environment sets (only the variables present)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in ENV_VARS:
        if var.name in _NOT_APP_CONFIG or var.name not in environ:
            continue
        try:
            values[var.name] = var.parse(environ[var.name])
        except ValueError as exc:
            raise ConfigurationError(f"{var.name}={environ[var.name]!r}: {exc}") from exc
    return values


def load(app: Flask, config: Any = None) -> None:
    """Apply a config class/object, a dict of overrides, or (None) the one $TICKZEN_ENV names.

    Order: the ENV_VARS defaults (production's where they differ), the class, the
    environment, then the dict overrides.
    """
    overrides: dict[str, Any] = {}
    if config is None or isinstance(config, dict):
        overrides = dict(config or {})
        env = _env_var("TICKZEN_ENV")
        name = overrides.pop("ENV_NAME", None) or os.environ.get(env.name, env.default)
        if name not in CONFIGS:
            raise ConfigurationError(f"TICKZEN_ENV must be one of {sorted(CONFIGS)}, not {name!r}")
        config = CONFIGS[name]
    app.config.update(defaults(getattr(config, "ENV_NAME", "development")))
    app.config.from_object(config)
    app.config.update(from_environment())
    app.config.update(overrides)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _resolve_store_url(app)
    _resolve_instance_folders(app)
    _resolve_request_limit(app)
    if not app.config.get("SECRET_KEY"):
        if app.config["ENV_NAME"] == "production":
            raise ConfigurationError("SECRET_KEY must be set in production")
        app.config["SECRET_KEY"] = _instance_secret(app, "secret_key", secrets.token_hex(32))


def _resolve_store_url(app: Flask) -> None:
    """A relative SQLite path is taken relative to the app's instance folder."""
    url = app.config["TICKZEN_STORE"]
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        rel = url[len(prefix):]
        rel = rel[len("instance/"):] if rel.startswith("instance/") else rel
        app.config["TICKZEN_STORE"] = prefix + str(Path(app.instance_path) / rel)


def _resolve_instance_folders(app: Flask) -> None:
    """``instance/<folder>`` (the defaults) is the folder inside the app's instance folder."""
    for name in _IN_INSTANCE:
        value = app.config.get(name)
        if isinstance(value, str) and value.startswith("instance/"):
            app.config[name] = str(Path(app.instance_path) / value[len("instance/"):])


# One request may carry one upload at its limit plus the form around it.
REQUEST_ENVELOPE_BYTES = 64 * 1024


def _resolve_request_limit(app: Flask) -> None:
    """MAX_CONTENT_LENGTH leaves room for one largest upload (TICKZEN_MAX_UPLOAD_BYTES), and
    never goes below the default the JSON API was sized for; a larger body is refused (413)
    before it is read."""
    app.config["MAX_CONTENT_LENGTH"] = max(
        int(app.config.get("MAX_CONTENT_LENGTH") or 0),
        int(app.config["TICKZEN_MAX_UPLOAD_BYTES"]) + REQUEST_ENVELOPE_BYTES)


def _instance_secret(app: Flask, name: str, generated: str) -> str:
    """Read a development secret kept under instance/, creating it (mode 600) the first time."""
    path = Path(app.instance_path) / name
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated


# ---------------------------------------------------------------------------------------------
# What the rest of the portal asks of the configuration and the environment.


def instance_path_setting(config: Any, environ: Mapping[str, str] | None = None) -> str | None:
    """Where instance/ lives: ``INSTANCE_PATH`` in a dict config, else $TICKZEN_INSTANCE_PATH,
    else None (Flask's default, ./instance). Tests point it at a temp folder, so the development
    keys, uploads and caches of the project's own instance/ are never written by them."""
    environ = os.environ if environ is None else environ
    chosen = config.get("INSTANCE_PATH") if isinstance(config, dict) else None
    chosen = chosen or environ.get("TICKZEN_INSTANCE_PATH")
    return str(Path(chosen).resolve()) if chosen else None


def serve_address(environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """Where ``python main_portal_app.py`` listens: $HOST and $PORT (defaults in ENV_VARS)."""
    environ = os.environ if environ is None else environ
    host, port = _env_var("HOST"), _env_var("PORT")
    return (host.parse(environ.get(host.name) or host.default),
            port.parse(environ.get(port.name) or port.default))


def instance_host(environ: Mapping[str, str] | None = None) -> str:
    """The machine this process runs on: App Service's $WEBSITE_INSTANCE_ID, else the host name."""
    environ = os.environ if environ is None else environ
    return environ.get("WEBSITE_INSTANCE_ID") or socket.gethostname() or "host"


def allow_private_urls(config: Mapping[str, Any] | None = None) -> bool:
    """Whether site and feed URLs may point at private or loopback addresses: the one reading
    of TICKZEN_ALLOW_PRIVATE_URLS (default ``Config``'s: yes; production: no)."""
    config = current_app.config if config is None else config
    return bool(config.get("TICKZEN_ALLOW_PRIVATE_URLS",
                           default_value("TICKZEN_ALLOW_PRIVATE_URLS")))


# The part of the config an automation sees: its own settings (LLM writer, data sources,
# providers, progress pacing), never the keys that sign sessions or decrypt passwords, the
# store's address or the objects tests inject.
AUTOMATION_SETTING_PREFIXES = ("TICKZEN_", "FINNHUB_", "PROGRESS_")
NOT_FOR_AUTOMATIONS = frozenset({"TICKZEN_SECRETS_KEY", "TICKZEN_STORE", "TICKZEN_STORE_OBJECT",
                                 "TICKZEN_PUBLISHING_OBJECT", "TICKZEN_SMTP_URL"})


def automation_settings(app: Flask) -> Mapping[str, Any]:
    """The read-only settings every automation is built with (and handed per item): the
    TICKZEN_/FINNHUB_/PROGRESS_ keys minus secrets and store handles, plus INSTANCE_PATH."""
    chosen = {key: value for key, value in app.config.items()
              if key.startswith(AUTOMATION_SETTING_PREFIXES) and key not in NOT_FOR_AUTOMATIONS}
    chosen["INSTANCE_PATH"] = app.instance_path
    return MappingProxyType(chosen)
