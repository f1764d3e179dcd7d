"""Config classes read from the environment (12-factor)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class Config:
    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    TICKZEN_STORE = os.environ.get("TICKZEN_STORE", "sqlite:///instance/tickzen.db")
    TICKZEN_SECRETS_KEY = os.environ.get("TICKZEN_SECRETS_KEY")
    SOCKETIO_MESSAGE_QUEUE = os.environ.get("SOCKETIO_MESSAGE_QUEUE")
    CORS_ALLOWED_ORIGINS = os.environ.get("CORS_ALLOWED_ORIGINS")   # None: same origin only
    PROGRESS_MAX_PER_SECOND = float(os.environ.get("PROGRESS_MAX_PER_SECOND", "2"))
    TICKZEN_MAX_ITEMS = _env_int("TICKZEN_MAX_ITEMS", 500)
    TICKZEN_MAX_RUNS = _env_int("TICKZEN_MAX_RUNS", 8)
    TICKZEN_MAX_RUNS_PER_USER = _env_int("TICKZEN_MAX_RUNS_PER_USER", 2)
    TICKZEN_AUTO_RESUME = os.environ.get("TICKZEN_AUTO_RESUME", "0") == "1"
    TICKZEN_CSV_DIR = os.environ.get("TICKZEN_CSV_DIR")
    TICKZEN_ALLOW_PRIVATE_URLS = os.environ.get("TICKZEN_ALLOW_PRIVATE_URLS", "1") == "1"
    TICKZEN_LLM_BASE_URL = os.environ.get("TICKZEN_LLM_BASE_URL")
    TICKZEN_LLM_MODEL = os.environ.get("TICKZEN_LLM_MODEL")
    TICKZEN_LLM_API_KEY = os.environ.get("TICKZEN_LLM_API_KEY")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
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
    TICKZEN_SECRETS_KEY = None
    RATELIMIT_ENABLED = True
    LOGIN_RATE_LIMIT = "1000 per minute"
    TICKZEN_AUTO_RESUME = False


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    TICKZEN_ALLOW_PRIVATE_URLS = os.environ.get("TICKZEN_ALLOW_PRIVATE_URLS", "0") == "1"


CONFIGS = {"development": DevelopmentConfig, "testing": TestingConfig,
           "production": ProductionConfig}


class ConfigurationError(RuntimeError):
    """The environment cannot run the portal (e.g. production without SECRET_KEY)."""


def load(app: Flask, config: Any = None) -> None:
    """Apply a config class/object, a dict of overrides, or (None) the one $TICKZEN_ENV names."""
    overrides: dict[str, Any] = {}
    if config is None or isinstance(config, dict):
        overrides = dict(config or {})
        name = overrides.pop("ENV_NAME", None) or os.environ.get("TICKZEN_ENV", "development")
        if name not in CONFIGS:
            raise ConfigurationError(f"TICKZEN_ENV must be one of {sorted(CONFIGS)}, not {name!r}")
        config = CONFIGS[name]
    app.config.from_object(config)
    app.config.update(overrides)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _resolve_store_url(app)
    if not app.config.get("SECRET_KEY"):
        if app.config["ENV_NAME"] == "production":
            raise ConfigurationError("SECRET_KEY must be set in production")
        app.config["SECRET_KEY"] = _instance_secret(app, "secret_key", secrets.token_hex(32))


def _resolve_store_url(app: Flask) -> None:
    """A relative SQLite path is taken relative to the project root's instance folder."""
    url = app.config["TICKZEN_STORE"]
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        rel = url[len(prefix):]
        rel = rel[len("instance/"):] if rel.startswith("instance/") else rel
        app.config["TICKZEN_STORE"] = prefix + str(Path(app.instance_path) / rel)


def _instance_secret(app: Flask, name: str, generated: str) -> str:
    """Read a development secret kept under instance/, creating it (mode 600) the first time."""
    path = Path(app.instance_path) / name
    if path.exists():
        return path.read_text().strip()
    path.write_text(generated)
    path.chmod(0o600)
    return generated
