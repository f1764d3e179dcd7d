"""TickZen Portal: ``create_app(config)`` and the SocketIO object.

``python main_portal_app.py`` serves on HOST:PORT (127.0.0.1:5000 by default).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.extensions import socketio

__all__ = ["create_app", "socketio"]


def create_app(config: Any = None) -> Flask:
    """Build the app. ``config``: a Config class/object, or a dict of overrides."""
    from portal import config as config_module

    app = Flask(__name__, instance_path=_instance_path(config), instance_relative_config=True,
                template_folder="templates", static_folder="static")
    config_module.load(app, config)

    from portal import extensions

    extensions.init_app(app)

    from portal import auth, automation, errors, pages, realtime, run_pages, sites

    errors.register(app)
    proxies = int(app.config.get("TICKZEN_PROXY_FIX") or 0)
    if proxies:  # behind Azure's front end: trust its X-Forwarded-For/-Proto (client IP, https)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies)

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(sites.bp)
    app.register_blueprint(automation.bp)
    app.register_blueprint(run_pages.bp)
    from portal import sources  # earnings calendar, sports feeds and stories (issue 6)
    app.register_blueprint(sources.bp)
    from portal import reports  # stock report pages and price uploads (issue 5)
    app.register_blueprint(reports.bp)
    realtime.register(socketio)
    extensions.init_services(app)
    return app


def _instance_path(config: Any) -> str | None:
    """Where instance/ lives: ``INSTANCE_PATH`` in a dict config, else $TICKZEN_INSTANCE_PATH,
    else Flask's default (./instance). Tests point it at a temp folder, so the development
    keys, uploads and caches of the project's own instance/ are never written by them."""
    chosen = config.get("INSTANCE_PATH") if isinstance(config, dict) else None
    chosen = chosen or os.environ.get("TICKZEN_INSTANCE_PATH")
    return str(Path(chosen).resolve()) if chosen else None


if __name__ == "__main__":  # pragma: no cover - manual serving
    application = create_app()
    socketio.run(application, host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", "5000")), allow_unsafe_werkzeug=True)
