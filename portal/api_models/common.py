"""What every area's models share: the error answer, the operation record, small answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Answers may carry more fields than listed (areas grow); requests are documented as
    the views read them."""

    model_config = ConfigDict(extra="allow")


class Error(Model):
    """Every 4xx/5xx of the API."""

    error: str = Field(description="What went wrong, for a person.")
    details: list[str] | None = Field(None, description="One message per bad part.")


class Deleted(Model):
    deleted: str = Field(description="The id of what was deleted.")


@dataclass(frozen=True)
class Param:
    """A query parameter: JSON Schema of its value."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One (route, method): what it is for and the shapes it takes and answers.

    ``body`` is a JSON body model, or ``multipart`` names a form upload's fields; ``answers``
    maps the success status to its model; errors (``errors`` statuses) answer ``Error``.
    ``path`` describes path parameters (JSON Schema, e.g. an enum of actions).
    """

    summary: str
    tag: str
    answers: dict[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    multipart: dict[str, dict[str, Any]] | None = None
    query: tuple[Param, ...] = ()
    path: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: tuple[int, ...] = (400, 401, 404, 429)
    public: bool = False
    description: str = ""
    media: str = "application/json"        # the success answer's content type


def ops(*entries: tuple[str, str, Operation]) -> dict[tuple[str, str], Operation]:
    """``(endpoint, METHOD, Operation)`` rows -> the registry's mapping."""
    return {(endpoint, method): operation for endpoint, method, operation in entries}


ID = {"type": "string", "minLength": 1, "maxLength": 200}
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
              "How many to return.")
OFFSET = Param("offset", {"type": "integer", "minimum": 0, "default": 0}, "How many to skip.")
