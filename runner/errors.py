"""The runner's error tree: the portal maps each to one HTTP status / socket error."""

from __future__ import annotations


class RunnerError(Exception):
    """Base of every error the RunManager raises at its callers."""


class InvalidRun(RunnerError):
    """The submitted run is unusable (400): unknown kind, no items, too many, bad items."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class RunNotFound(RunnerError):
    """No such run, site or a run of another user (404: never say which)."""


class TransitionNotAllowed(RunnerError):
    """The run's state forbids the requested action (409)."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status
