"""The account and personal API tokens (portal/account.py, portal/tokens.py)."""

from __future__ import annotations

from pydantic import Field

from portal.api_models.common import ID, Deleted, Model, Operation, ops


class Account(Model):
    email: str
    display_name: str
    timezone: str = Field(description="IANA zone name.")
    email_events: list[str] = Field(description="Event types that email you.")


class AccountUpdate(Model):
    display_name: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, max_length=64, description="IANA zone name.",
                                 examples=["Europe/Paris"])
    email_events: list[str] | None = None
    email: str | None = Field(None, description="Only the current address (it cannot change).")


class PasswordChange(Model):
    current_password: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, max_length=128)


class PasswordChanged(Model):
    changed: bool


class AccountDelete(Model):
    password: str = Field(min_length=1, max_length=128)


class TokenCreate(Model):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")


class Token(Model):
    id: str
    name: str
    created_at: str
    last_used_at: str | None = None


class NewToken(Token):
    token: str = Field(description="`tz_...`: shown this once, stored only as a hash.")


class TokenList(Model):
    tokens: list[Token]


OPERATIONS = ops(
    ("account.api_get", "GET", Operation("Your account", "account", {200: Account})),
    ("account.api_update", "PATCH", Operation(
        "Change your profile and email choices", "account", {200: Account},
        body=AccountUpdate)),
    ("account.api_password", "POST", Operation(
        "Change your password", "account", {200: PasswordChanged}, body=PasswordChange,
        description="Every other session is signed out and its sockets closed.")),
    ("account.api_delete", "DELETE", Operation(
        "Delete your account and everything it owns", "account", {200: Deleted},
        body=AccountDelete, description="WordPress posts stay.")),
    ("tokens.api_list", "GET", Operation("Your API tokens", "tokens", {200: TokenList})),
    ("tokens.api_create", "POST", Operation(
        "Create an API token (shown once)", "tokens", {201: NewToken}, body=TokenCreate,
        errors=(400, 401, 409, 429), description="409 past TICKZEN_MAX_TOKENS.")),
    ("tokens.api_revoke", "DELETE", Operation("Revoke an API token", "tokens",
                                              {200: Deleted}, path={"token_id": ID})),
    ("openapi.spec", "GET", Operation("This document (OpenAPI 3.1)", "reference",
                                      {200: Model}, public=True, errors=(429,))),
    ("openapi.docs", "GET", Operation("The readable API reference (HTML)", "reference",
                                      {200: Model}, public=True, errors=(429,),
                                      media="text/html")),
)
