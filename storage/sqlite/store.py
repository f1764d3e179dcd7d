"""The SQLite store: every aggregate over one connection (see ``connection`` for the model)."""

from __future__ import annotations

from storage.sqlite.campaigns import CampaignsMixin
from storage.sqlite.housekeeping import HousekeepingMixin
from storage.sqlite.insights import InsightsMixin
from storage.sqlite.jobs import JobsMixin
from storage.sqlite.ledger import LedgerMixin
from storage.sqlite.notifications import NotificationsMixin
from storage.sqlite.runs import RunsMixin
from storage.sqlite.seed import SeedMixin
from storage.sqlite.sites import SitesMixin
from storage.sqlite.tokens import TokensMixin
from storage.sqlite.users import UsersMixin


class SQLiteStore(UsersMixin, TokensMixin, SitesMixin, LedgerMixin, CampaignsMixin, RunsMixin,
                  NotificationsMixin, JobsMixin, HousekeepingMixin, SeedMixin, InsightsMixin):
    """Store on one SQLite file (the embedded default, under instance/)."""
