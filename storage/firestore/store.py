"""The Firestore store: every aggregate over one client (see ``connection`` for the layout)."""

from __future__ import annotations

from storage.firestore.campaigns import CampaignsMixin
from storage.firestore.housekeeping import HousekeepingMixin
from storage.firestore.insights import InsightsMixin
from storage.firestore.jobs import JobsMixin
from storage.firestore.ledger import LedgerMixin
from storage.firestore.notifications import NotificationsMixin
from storage.firestore.runs import RunsMixin
from storage.firestore.seed import SeedMixin
from storage.firestore.sites import SitesMixin
from storage.firestore.tokens import TokensMixin
from storage.firestore.users import UsersMixin


class FirestoreStore(UsersMixin, TokensMixin, SitesMixin, LedgerMixin, CampaignsMixin, RunsMixin,
                     NotificationsMixin, JobsMixin, HousekeepingMixin, SeedMixin, InsightsMixin):
    """Store on Cloud Firestore (or its emulator): what several instances share."""
