"""Flask extension objects, created unbound and bound in ``create_app``."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

socketio = SocketIO()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_app(app: Flask) -> None:
    """Bind the shared extension objects to ``app`` (the last app built owns ``socketio``)."""
    origins = app.config.get("CORS_ALLOWED_ORIGINS")
    socketio.init_app(
        app,
        async_mode="threading",
        cors_allowed_origins=[o.strip() for o in origins.split(",")] if origins else None,
        ping_interval=25,
        ping_timeout=60,
        message_queue=app.config.get("SOCKETIO_MESSAGE_QUEUE"),
        manage_session=False,
    )
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)


def init_services(app: Flask) -> None:
    """Open the store and start the run manager; both live in ``app.extensions['tickzen']``."""
    from portal.services import build_services

    app.extensions["tickzen"] = build_services(app)
