"""Configuration per environment, production cookie flags, and startup.sh really serving
(HTTP and a Socket.IO WebSocket under gunicorn gthread)."""

from __future__ import annotations

import ast
import inspect
import os
import re
import threading
import tokenize
from pathlib import Path

import pytest
import requests
import socketio
from cryptography.fernet import Fernet

from automation_scripts.earnings.providers import FinnhubProvider
from automation_scripts.llm_calls import DEFAULT_MAX_CALLS
from automation_scripts.sports.feeds import FeedFetcher
from automation_scripts.writing import LLMWriter
from main_portal_app import create_app
from portal.config import (
    CONFIG_ONLY_KEYS,
    CONFIGS,
    ENV_VARS,
    ConfigurationError,
    default_value,
    defaults,
    from_environment,
)
from tests.support.procs import free_port, spawn, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'config.db'}"


def _config(tmp_path: Path, **values: str) -> dict[str, str]:
    """A config dict whose store and instance folder live under ``tmp_path``."""
    return {"TICKZEN_STORE": _store(tmp_path), "INSTANCE_PATH": str(tmp_path / "instance"),
            **values}


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app(_config(tmp_path, ENV_NAME="production"))
    monkeypatch.setenv("TICKZEN_ENV", "production")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app(_config(tmp_path))


def test_unknown_environment_name_is_refused(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKZEN_ENV", "staging")
    with pytest.raises(ConfigurationError, match="TICKZEN_ENV"):
        create_app(_config(tmp_path))


def test_bad_number_in_environment_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("TICKZEN_MAX_ITEMS", "lots")
    with pytest.raises(ConfigurationError, match="TICKZEN_MAX_ITEMS"):
        from_environment()


def test_environment_is_read_when_the_app_is_built(monkeypatch, make_app) -> None:
    monkeypatch.setenv("TICKZEN_MAX_ITEMS", "42")
    monkeypatch.setenv("TICKZEN_AUTO_RESUME", "1")
    monkeypatch.setenv("LOGIN_RATE_LIMIT", "5 per hour")
    app = make_app()
    assert app.config["TICKZEN_MAX_ITEMS"] == 42
    assert app.config["TICKZEN_AUTO_RESUME"] is True
    assert app.config["LOGIN_RATE_LIMIT"] == "5 per hour"
    assert make_app(TICKZEN_MAX_ITEMS=7).config["TICKZEN_MAX_ITEMS"] == 7   # overrides win


def test_instance_folder_is_configurable_and_holds_the_generated_keys(
        monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("TICKZEN_SECRETS_KEY", raising=False)
    monkeypatch.delenv("TICKZEN_INSTANCE_PATH", raising=False)
    app = create_app({"ENV_NAME": "development", "INSTANCE_PATH": str(tmp_path / "inst"),
                      "TICKZEN_START_RUNNER": False})
    try:
        assert app.instance_path == str(tmp_path / "inst")
        assert (tmp_path / "inst" / "secret_key").read_text() == app.config["SECRET_KEY"]
        assert (tmp_path / "inst" / "secrets_key").is_file()      # the Fernet key
        assert app.config["TICKZEN_STORE"] == f"sqlite:///{tmp_path / 'inst' / 'tickzen.db'}"
    finally:
        app.extensions["tickzen"].store.close()
    monkeypatch.setenv("TICKZEN_INSTANCE_PATH", str(tmp_path / "from-env"))
    app = create_app({"ENV_NAME": "testing", "TICKZEN_START_RUNNER": False})
    try:
        assert app.instance_path == str(tmp_path / "from-env")
        assert (tmp_path / "from-env" / "tickzen.db").is_file()
    finally:
        app.extensions["tickzen"].store.close()


def test_test_apps_never_use_the_projects_instance_folder(make_app, tmp_path: Path) -> None:
    app = make_app()
    assert Path(app.instance_path).is_relative_to(tmp_path)
    assert not Path(app.instance_path).is_relative_to(ROOT / "instance")


def test_development_generates_and_keeps_a_secret_key(monkeypatch, tmp_path: Path) -> None:
    from flask import Flask

    from portal.config import load

    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = Flask("dev_a", instance_path=str(tmp_path / "instance"))
    load(first, {"ENV_NAME": "development", "TICKZEN_STORE": "sqlite:///instance/t.db"})
    key = first.config["SECRET_KEY"]
    secret_file = tmp_path / "instance" / "secret_key"
    assert len(key) >= 32 and secret_file.read_text() == key
    assert secret_file.stat().st_mode & 0o077 == 0
    assert first.config["TICKZEN_STORE"] == f"sqlite:///{tmp_path / 'instance' / 't.db'}"
    second = Flask("dev_b", instance_path=str(tmp_path / "instance"))
    load(second, {"ENV_NAME": "development"})
    assert second.config["SECRET_KEY"] == key


def test_production_cookie_flags(monkeypatch, make_app) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-production-secret")
    monkeypatch.setenv("TICKZEN_SECRETS_KEY", Fernet.generate_key().decode())
    app = make_app(ENV_NAME="production")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["TICKZEN_ALLOW_PRIVATE_URLS"] is False
    client = app.test_client()
    page = client.get("/register", base_url="https://portal.example")
    token = META.search(page.get_data(as_text=True)).group(1)
    response = client.post("/register", base_url="https://portal.example",
                           headers={"Referer": "https://portal.example/register"},
                           data={"email": "prod@example.com", "password": "correct-horse-1",
                                 "confirm_password": "correct-horse-1", "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_socketio_same_origin_by_default(make_app) -> None:
    app = make_app()
    assert app.config["CORS_ALLOWED_ORIGINS"] is None
    server = app.extensions["socketio"].server
    assert server.eio.cors_allowed_origins is None          # engineio: None = same origin
    assert server.eio.ping_interval == 25 and server.eio.ping_timeout == 60
    assert server.async_mode == "threading"


def test_readme_documents_every_environment_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [var.name for var in ENV_VARS if f"`{var.name}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
    assert "make run" in readme and "make test" in readme


def test_readme_table_shows_each_default_and_purpose() -> None:
    readme = (ROOT / "README.md").read_text()
    stale = [var.name for var in ENV_VARS
             if f"| `{var.name}` | {var.shown_default} | {var.help} |" not in readme]
    assert not stale, f"README configuration rows differ from ENV_VARS for {stale}"


# -- one list of variables, one reader of the environment ---------------------------------------

APP_PACKAGES = ("portal", "runner", "automation_scripts", "storage")
CONFIG_MODULE = ROOT / "portal" / "config.py"
PROCESS_ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
VARIABLE_NAME = re.compile(r"\b(?:TICKZEN|FINNHUB)_[A-Z0-9_]*[A-Z0-9]\b")


def app_files() -> list[Path]:
    files = [ROOT / "main_portal_app.py"]
    for package in APP_PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def environment_reads(path: Path) -> list[str]:
    """Where a module touches the process environment: ``os.environ``/``os.getenv``... or
    those names imported from ``os``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Attribute) and node.attr in PROCESS_ENVIRONMENT
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: from os import {a.name}"
                      for a in node.names if a.name in PROCESS_ENVIRONMENT]
    return found


def texts_in(path: Path) -> list[str]:
    """The strings and comments of a module: where a variable's name appears when code reads
    it (an identifier such as a ``FINNHUB_URL`` constant is not a variable)."""
    with tokenize.open(path) as handle:
        return [token.string for token in tokenize.generate_tokens(handle.readline)
                if token.type in (tokenize.STRING, tokenize.COMMENT)]


def test_only_the_config_module_reads_the_environment() -> None:
    assert environment_reads(CONFIG_MODULE), "the check must see config.py's own reads"
    reads = [r for f in app_files() if f != CONFIG_MODULE for r in environment_reads(f)]
    assert not reads, "read these through app.config / the settings mapping: " + str(reads)


def test_every_variable_the_code_names_is_listed() -> None:
    listed = {var.name for var in ENV_VARS}
    named: dict[str, str] = {}
    for path in app_files():
        for text in texts_in(path):
            for match in VARIABLE_NAME.finditer(text):
                named.setdefault(match.group(0), str(path.relative_to(ROOT)))
    missing = {name: where for name, where in named.items()
               if name not in listed and name not in CONFIG_ONLY_KEYS}
    assert not missing, f"add these to portal/config.py's ENV_VARS: {missing}"
    startup = (ROOT / "startup.sh").read_text()
    shell = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", startup))
    assert shell and shell <= listed, f"startup.sh reads unlisted {shell - listed}"
    assert not CONFIG_ONLY_KEYS & listed


def test_each_variable_is_listed_once_and_its_default_parses() -> None:
    names = [var.name for var in ENV_VARS]
    assert len(names) == len(set(names))
    for env_name in CONFIGS:
        assert defaults(env_name)                         # every default parses
    assert defaults("production")["TICKZEN_ALLOW_PRIVATE_URLS"] is False
    assert defaults("development")["TICKZEN_ALLOW_PRIVATE_URLS"] is True
    assert defaults("production")["TICKZEN_PROXY_FIX"] == 1
    for cls in CONFIGS.values():                          # no class restates a default
        restated = [n for n in vars(cls) if n in names and n not in ("SECRET_KEY",
                                                                     "LOGIN_RATE_LIMIT")]
        assert not restated, f"{cls.__name__} restates {restated}"


def test_components_fall_back_on_the_listed_defaults() -> None:
    """Built without the portal (a script, a unit test) a component keeps its own parameter
    default; that must be the variable's listed default, not a second opinion."""
    def param(component: object, name: str) -> object:
        return inspect.signature(component).parameters[name].default

    assert param(LLMWriter, "timeout") == default_value("TICKZEN_LLM_TIMEOUT")
    assert default_value("TICKZEN_LLM_MAX_CALLS") == DEFAULT_MAX_CALLS
    assert param(FinnhubProvider, "timeout") == default_value("TICKZEN_PROVIDER_TIMEOUT")
    assert param(FinnhubProvider, "base_url") == default_value("FINNHUB_API_URL")
    assert param(FeedFetcher, "timeout") == default_value("TICKZEN_FEED_TIMEOUT")
    assert param(FeedFetcher, "max_bytes") == default_value("TICKZEN_FEED_MAX_BYTES")


def test_every_default_reaches_app_config_typed(monkeypatch, make_app) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var.name, raising=False)
    app = make_app()
    instance = Path(app.instance_path)
    expected = defaults("testing") | {"SECRET_KEY": "testing-secret-key",
                                      "LOGIN_RATE_LIMIT": "1000 per minute",
                                      "TICKZEN_STORE": app.config["TICKZEN_STORE"],
                                      "TICKZEN_WORKDIR": str(instance / "runs"),
                                      "TICKZEN_ARCHIVE_DIR": str(instance / "archive"),
                                      "TICKZEN_PRICE_CACHE_DIR": str(instance / "cache" /
                                                                     "prices")}
    assert {name: app.config[name] for name in expected} == expected
    assert app.config["TICKZEN_FEED_MAX_BYTES"] == 2 * 1024 * 1024
    assert app.config["TICKZEN_PROVIDER_TIMEOUT"] == 10.0


def test_earnings_settings_come_from_the_environment_through_app_config(monkeypatch,
                                                                          make_app) -> None:
    monkeypatch.setenv("FINNHUB_API_KEY", "env-key")
    monkeypatch.setenv("FINNHUB_API_URL", "http://finnhub.invalid/api/v1")
    monkeypatch.setenv("TICKZEN_PROVIDER_TIMEOUT", "2.5")
    monkeypatch.setenv("TICKZEN_EARNINGS_CALENDAR_FILE", "/data/calendar.json")
    monkeypatch.setenv("TICKZEN_FEED_TIMEOUT", "4")
    app = make_app()
    assert app.config["TICKZEN_PROVIDER_TIMEOUT"] == 2.5
    assert app.config["TICKZEN_FEED_TIMEOUT"] == 4.0
    config = app.extensions["tickzen"].automations["earnings"].config
    assert (config.finnhub_api_key, config.finnhub_url, config.timeout, config.calendar_file) \
        == ("env-key", "http://finnhub.invalid/api/v1", 2.5, "/data/calendar.json")
    monkeypatch.setenv("TICKZEN_FEED_MAX_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="TICKZEN_FEED_MAX_BYTES"):
        from_environment()


def test_startup_script_serves_http_and_websockets(tmp_path: Path) -> None:
    """startup.sh's own command (gunicorn gthread) on a free port: /healthz, then a
    logged-in python-socketio client over the websocket transport."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), GUNICORN_BIND_HOST="127.0.0.1",
               SECRET_KEY="startup-test-secret", TICKZEN_STORE=_store(tmp_path),
               TICKZEN_INSTANCE_PATH=str(tmp_path / "instance"),
               TICKZEN_SECRETS_KEY=Fernet.generate_key().decode(),
               TICKZEN_PROXY_FIX="0", GUNICORN_THREADS="8",
               PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("TICKZEN_ENV", None)                                   # startup.sh's default
    log = tmp_path / "gunicorn.log"
    proc = spawn(["bash", str(ROOT / "startup.sh")], "startup-test", log=log, env=env,
                 cwd=str(tmp_path))
    try:
        wait_for_port(port, timeout=60, proc=proc)
        base = f"http://127.0.0.1:{port}"
        health = requests.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["scheduler"] == "ok"          # the campaign scheduler ticks

        # production cookies are Secure, so requests keeps them off plain http: carry by hand
        page = requests.get(f"{base}/register", timeout=10)
        token = META.search(page.text).group(1)
        response = requests.post(
            f"{base}/register", timeout=10, allow_redirects=False,
            headers={"Cookie": f"session={page.cookies['session']}"},
            data={"email": "ws@example.com", "password": "correct-horse-1",
                  "confirm_password": "correct-horse-1", "csrf_token": token})
        assert response.status_code == 302, response.text
        assert "Secure" in response.headers["Set-Cookie"]
        session_cookie = response.cookies["session"]
        dashboard = requests.get(f"{base}/", timeout=10, allow_redirects=False,
                                 headers={"Cookie": f"session={session_cookie}"})
        assert dashboard.status_code == 200 and "ws@example.com" in dashboard.text

        client = socketio.Client(reconnection=False)
        statuses: list[dict] = []
        got_status = threading.Event()

        @client.on("connection_status")
        def on_status(data: dict) -> None:
            statuses.append(data)
            got_status.set()

        client.connect(base, transports=["websocket"], wait_timeout=20,
                       headers={"Cookie": f"session={session_cookie}"})
        try:
            assert client.connected
            assert client.transport() == "websocket"
            assert got_status.wait(20), "no connection_status from the server"
            assert statuses[0]["status"] == "connected"
        finally:
            client.disconnect()

        anonymous = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            anonymous.connect(base, transports=["websocket"], wait_timeout=20)
    except Exception:
        print(log.read_text() if log.exists() else "(no gunicorn log)")
        raise
    finally:
        stop(proc)
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):              # the whole group is gone
        os.killpg(proc.pid, 0)
