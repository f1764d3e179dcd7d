"""TickZen Portal: ``create_app(config)``, each app with its own Socket.IO object.

``python main_portal_app.py`` serves on HOST:PORT (127.0.0.1:5000 by default).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import (
    account,
    auth,
    automation,
    campaigns,
    errors,
    extensions,
    housekeeping,
    notifications,
    openapi,
    pages,
    password_reset,
    realtime,
    reports,
    run_pages,
    security,
    services,
    sites,
    sources,
    tokens,
    webhooks,
)
from portal import config as config_module
from portal.extensions import socketio_of

__all__ = ["create_app", "socketio_of"]

# Every blueprint the portal serves, registered in this order.
BLUEPRINTS = (auth.bp, pages.bp, sites.bp, automation.bp, run_pages.bp, sources.bp, reports.bp,
              campaigns.bp, account.bp, password_reset.bp, tokens.bp,
              openapi.bp, notifications.bp, webhooks.bp)


def create_app(config: Any = None) -> Flask:
    """Build the app. ``config``: a Config class/object, or a dict of overrides."""
    app = Flask(__name__, instance_path=config_module.instance_path_setting(config),
                instance_relative_config=True, template_folder="templates",
                static_folder="static")
    config_module.load(app, config)
    socketio = extensions.init_app(app)
    errors.register(app)
    security.init_app(app)
    tokens.init_app(app)
    proxies = int(app.config["TICKZEN_PROXY_FIX"])
    if proxies:  # behind Azure's front end: trust its X-Forwarded-For/-Proto (client IP, https)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    realtime.register(socketio)
    housekeeping.init_app(app)            # the tickzen CLI; before services (see there)
    services.init_app(app)
    return app


if __name__ == "__main__":  # pragma: no cover - manual serving
    application = create_app()
    host, port = config_module.serve_address()
    socketio_of(application).run(application, host=host, port=port,
                                 allow_unsafe_werkzeug=True)
