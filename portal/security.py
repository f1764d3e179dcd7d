"""The headers every response carries (DESIGN.md "Security headers").

Everything the pages use is served by the portal itself (vendored scripts, CSS, images of the
local archive), so the policy is ``'self'`` only: no inline script, no inline style attribute,
no ``eval``; images may also be ``data:`` URLs (small icons). Images of a WordPress site are not
shown on portal pages (posts link to the site), so no outside host is allowed. Socket.IO
connects to the same origin (``connect-src 'self'``; browsers also count ws:/wss: of the same
host as 'self'). Frames are refused both ways. Production adds HSTS.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    """Add the headers to every response of ``app`` (errors and static files included)."""
    production = app.config.get("ENV_NAME") == "production"

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if production:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
