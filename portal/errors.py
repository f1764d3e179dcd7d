"""One error shape: JSON ``{error, details?}`` for /api/*, a friendly HTML page elsewhere, never
a traceback.

Domain errors say their own HTTP status: every exception class with an integer ``http_status``
(the runner's ``RunNotFound`` 404, ``TransitionNotAllowed`` 409, ``InvalidRun`` 400; the store's
``NotFoundError`` 404, ``DuplicateError`` and ``ConflictError`` 409; the portal's own
``PortalError`` tree below) is answered by the one handler ``register`` installs, so a view
raises and never picks a status. The same handlers turn every HTTP error, CSRF failure,
rate-limit breach and unexpected exception into the same shape.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

_FRIENDLY = {
    400: "The request could not be understood.",
    401: "Please sign in first.",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address.",
    405: "That method is not allowed here.",
    409: "That conflicts with the current state.",
    413: "That upload is too large.",
    429: "Too many attempts. Please wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged.",
    502: "An outside service did not answer as expected.",
    503: "The service is temporarily unavailable.",
}


class PortalError(Exception):
    """An error a portal view raises for the handler to answer; the class names the status.

    ``details`` (one message per bad part of the request) goes out beside ``error``.
    """

    http_status = 400

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class InvalidRequest(PortalError):
    """The request's body, query or upload is unusable (400)."""

    http_status = 400


class SignInRequired(PortalError):
    """The call needs a signed-in user (401)."""

    http_status = 401


class NotFound(PortalError):
    """Nothing the signed-in user may see lives here (404): unknown, or another user's."""

    http_status = 404


class PayloadTooLarge(PortalError):
    """An upload over its size limit (413)."""

    http_status = 413


class UpstreamFailed(PortalError):
    """An outside provider the request depends on failed (502)."""

    http_status = 502


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status a domain error carries (its class's ``http_status``), else None."""
    status = getattr(type(exc), "http_status", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def error_response(status: int, message: str,
                   details: list[str] | None = None) -> tuple[Response, int]:
    """The API's error answer: ``{"error": message}`` (plus ``details`` when given)."""
    body: dict[str, object] = {"error": message}
    if details:
        body["details"] = details
    return jsonify(body), status


def wants_json() -> bool:
    """JSON for the API (and for clients that only accept JSON); HTML for pages."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes.accept_html


def _page(status: int, message: str, title: str | None = None) -> tuple[str, int]:
    """Render templates/errors/error.html (a plain string if even that fails)."""
    try:
        body = render_template("errors/error.html", status=status, message=message,
                               title=title or _title(status))
    except Exception:  # the error page must never raise itself
        log.exception("rendering the error page failed")
        body = f"<!doctype html><title>{status}</title><p>{_FRIENDLY.get(status, 'Error')}</p>"
    return body, status


def _title(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def respond(status: int, message: str, details: list[str] | None = None):
    """An error in the shape the current request wants."""
    if wants_json():
        return error_response(status, message, details)
    return _page(status, message)


def domain_error(exc: Exception):
    """The answer to a domain error: its status, its message (and details)."""
    status = http_status_of(exc) or InternalServerError.code
    message = str(getattr(exc, "message", None) or exc) or _FRIENDLY.get(status, "Error")
    details = getattr(exc, "details", None)
    log.log(logging.WARNING if status >= 500 else logging.INFO, "%s on %s %s: %s", status,
            request.method, request.path, message)
    return respond(status, message, list(details) if details else None)


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = f"CSRF check failed: {exc.description}"
        if wants_json():
            return error_response(400, message)
        return _page(400, "Your form expired or was not sent from this site. "
                          "Reload the page and try again.", "400 Form expired")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        if status >= 500:
            log.error("HTTP %s on %s %s: %s", status, request.method, request.path,
                      exc.description)
        if status == 429:
            message = _FRIENDLY[429]
        elif exc.description and status < 500 and wants_json():
            message = exc.description
        else:
            message = _FRIENDLY.get(status) or exc.description or "Error"
        response = app.make_response(respond(status, message))
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        if status == 429 and exc.response is not None and "Retry-After" in exc.response.headers:
            response.headers["Retry-After"] = exc.response.headers["Retry-After"]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return http_error(exc)
        if http_status_of(exc) is not None:
            return domain_error(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return respond(InternalServerError.code, _FRIENDLY[500])
