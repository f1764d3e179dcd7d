"""Per-account quotas: how many sites, campaigns, webhooks and API tokens one account keeps, and
how large one upload may be (``TICKZEN_MAX_*`` in portal/config.py).

Past a quota the create is refused with 409 ``{error}`` naming the limit (a form error on the
pages) and nothing is stored. 409 rather than 403: the request is allowed and well formed, it
conflicts with what the account holds now, and the same request succeeds once one is removed.

The check counts the account's records just before the insert, outside the store's
transaction: two creates racing at the last free place may both pass and leave the account
one over (never more than the creates in flight at that moment); the next create is refused
again. The limit exists to stop a script making thousands, which this does; an exact count
would need a per-user counter in both stores' transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from werkzeug.datastructures import FileStorage

from portal.errors import PayloadTooLarge, PortalError
from portal.services import services
from storage.base import Store


class QuotaReached(PortalError):
    """The account already holds as many of these as its quota allows (409)."""

    http_status = 409


@dataclass(frozen=True)
class Quota:
    """One per-account limit: the setting that holds it, what it counts, how to make room."""

    setting: str
    noun: str
    remedy: str
    count: Callable[[Store, str], int]

    def limit(self) -> int:
        return int(current_app.config[self.setting])

    def check(self, user_id: str) -> None:
        """Raise QuotaReached when the user may not add one more."""
        limit = self.limit()
        if self.count(services().store, user_id) >= limit:
            raise QuotaReached(f"limit reached: at most {limit} {self.noun} per account "
                               f"({self.setting}); {self.remedy}")


SITES = Quota("TICKZEN_MAX_SITES", "sites", "remove one to add another",
              lambda store, user_id: len(store.list_sites(user_id)))
CAMPAIGNS = Quota("TICKZEN_MAX_CAMPAIGNS", "campaigns", "delete one to add another",
                  lambda store, user_id: len(store.list_campaigns(user_id)))
WEBHOOKS = Quota("TICKZEN_MAX_WEBHOOKS", "webhooks", "delete one to add another",
                 lambda store, user_id: len(store.list_webhooks(user_id)))
TOKENS = Quota("TICKZEN_MAX_TOKENS", "API tokens", "revoke one to make another",
               lambda store, user_id: len(store.list_tokens(user_id)))


def size_text(size: int) -> str:
    """A byte count as people read it: 5 MB, 300 KB, 512 bytes."""
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size} bytes"


def upload_limit() -> int:
    return int(current_app.config["TICKZEN_MAX_UPLOAD_BYTES"])


def read_upload(upload: FileStorage) -> bytes:
    """The uploaded file's bytes, never more than TICKZEN_MAX_UPLOAD_BYTES (413 past it)."""
    limit = upload_limit()
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the file is larger than {size_text(limit)} "
                              "(TICKZEN_MAX_UPLOAD_BYTES)")
    return data

