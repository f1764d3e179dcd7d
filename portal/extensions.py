"""Flask extension objects, created unbound and bound in ``create_app``.

Socket.IO is the exception: each app gets its own ``SocketIO`` (``app.extensions["socketio"]``),
because one shared object keeps only the server of the app bound last, and a second app in the
same process would then emit into, and look its clients up in, the first one's place.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

from portal.socket_sessions import client_manager

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_app(app: Flask) -> SocketIO:
    """Bind the shared extension objects to ``app`` and build its own Socket.IO server."""
    origins = app.config.get("CORS_ALLOWED_ORIGINS")
    socketio = SocketIO()
    manager = client_manager(app.config.get("SOCKETIO_MESSAGE_QUEUE"))
    socketio.init_app(
        app,
        **({"client_manager": manager} if manager is not None else {}),
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
    return socketio


def socketio_of(app: Flask) -> SocketIO:
    """The Socket.IO object ``app`` was built with (serve it, test it, emit through it)."""
    return app.extensions["socketio"]
