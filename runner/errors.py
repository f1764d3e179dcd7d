"""The runner's error tree. Each class carries the HTTP status it means (``http_status``), so
the portal's one error handler answers it without a view choosing a status."""

from __future__ import annotations


class RunnerError(Exception):
    """Base of every error the RunManager raises at its callers."""


class InvalidRun(RunnerError):
    """The submitted run is unusable (400): unknown kind, no items, too many, bad items."""

    http_status = 400

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class RunNotFound(RunnerError):
    """No such run, site or a run of another user (404: never say which)."""

    http_status = 404


class TransitionNotAllowed(RunnerError):
    """The run's state forbids the requested action (409)."""

    http_status = 409

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status
