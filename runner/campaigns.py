"""Campaigns: saved automations that fire on a schedule, exactly one run per fire.

``CampaignService`` keeps a user's campaigns (checked on save exactly as ``POST /api/runs``
checks a run), pauses and resumes them, fires one now, and fires the due ones when the
scheduler ticks. A fire is decided outside the store (which due times ran, were coalesced or
missed; whether the previous run is still active; which items the next run takes) and then
written in one step, ``Store.fire_campaign``: a compare-and-set on the campaign's revision that
records the fires and creates the run under the fire's id. Of several instances ticking at once
exactly one wins; the others lose the compare-and-set and write nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.campaign_checks import (
    CampaignConflict,
    CampaignDraft,
    CampaignNotFound,
    InvalidCampaign,
    check_campaign,
)
from runner.campaign_sources import (
    QueueView,
    SourceContext,
    SourceError,
    next_batch,
    queue_view,
    uses_queue,
)
from runner.errors import InvalidRun, RunNotFound
from runner.schedules import (
    DuePlan,
    Schedule,
    ScheduleError,
    parse_schedule,
    plan_due,
    stored_schedule,
)
from storage.base import (
    Campaign,
    ConflictError,
    DuplicateError,
    Fire,
    NewItem,
    NotFoundError,
    Run,
    Store,
    StoreError,
    utcnow,
)

log = logging.getLogger(__name__)

# A campaign's previous run blocks its next fire while it is in one of these states.
BLOCKING = ("queued", "running", "pausing", "paused", "interrupted")
# What a WordPress connection check answers when the site will refuse every post.
REFUSED = ("bad_credentials", "not_authenticated", "no_credentials", "secrets_error",
           "unsafe_url", "forbidden")
DUE_PER_TICK = 100


def fire_key(campaign_id: str, scheduled_for: datetime, *, manual: bool = False) -> str:
    """``<campaign_id>:<scheduled_for>``, the scheduled time in ISO-8601 UTC; a run-now fire
    ends in ``/now``, so it never takes the id of a scheduled fire at the same instant."""
    stamp = scheduled_for.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"{campaign_id}:{stamp}" + ("/now" if manual else "")


@dataclass
class FireResult:
    """What one fire did: ``outcome`` of the due time that ran (or None), its run, and
    whether this instance's write won (``False``: another instance fired first)."""

    campaign_id: str
    won: bool
    outcome: str | None = None
    reason: str = ""
    run: Run | None = None
    fires: list[Fire] = field(default_factory=list)


@dataclass
class _Decision:
    outcome: str
    reason: str = ""
    run: Run | None = None
    items: list[NewItem] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)


class CampaignService:
    """A user's campaigns, and the fires the scheduler asks for; knows no Flask."""

    def __init__(self, store: Store, runs: Any, publishing: Any = None, *,
                 settings: Mapping[str, Any] | None = None, min_interval_seconds: int = 300,
                 clock: Callable[[], datetime] = utcnow,
                 fetcher_factory: Callable[[str], Any] | None = None) -> None:
        self.store = store
        self.runs = runs                     # runner.manager.RunManager
        self.publishing = publishing         # runner.publishing.PublishingService
        self.settings = dict(settings or {})
        self.min_interval_seconds = int(min_interval_seconds)
        self.clock = clock
        self.sources = SourceContext(store=store, automations=runs.automations,
                                     settings=self.settings, fetcher_factory=fetcher_factory)

    # ------------------------------------------------------------------------------------------
    # Reading.

    def get(self, user_id: str, campaign_id: Any) -> Campaign:
        campaign = self.store.get_campaign(user_id, campaign_id) \
            if isinstance(campaign_id, str) and campaign_id else None
        if campaign is None:
            raise CampaignNotFound("campaign not found")
        return campaign

    def list(self, user_id: str) -> list[Campaign]:
        return self.store.list_campaigns(user_id)

    def fires(self, user_id: str, campaign_id: str, limit: int = 50, offset: int = 0
              ) -> list[Fire]:
        self.get(user_id, campaign_id)
        return self.store.list_fires(campaign_id, limit=limit, offset=offset)

    def next_fires(self, campaign: Campaign, n: int = 3) -> list[datetime]:
        """The coming fires of an active campaign (none while paused or completed)."""
        if campaign.status != "active" or campaign.next_fire_at is None:
            return []
        return stored_schedule(campaign.schedule).next_fires(campaign.next_fire_at, n)

    def preview(self, raw_schedule: Any, n: int = 3) -> tuple[Schedule, list[datetime]]:
        """A schedule as the form types it: checked, and its next ``n`` fires from now."""
        now = self.clock()
        try:
            schedule = parse_schedule(raw_schedule, min_interval_seconds=self.min_interval_seconds,
                                      now=now)
        except ScheduleError as exc:
            raise InvalidCampaign(f"schedule: {exc}") from None
        return schedule, schedule.next_fires(schedule.first_fire(now), n)

    @staticmethod
    def schedule_of(campaign: Campaign) -> Schedule:
        return stored_schedule(campaign.schedule)

    @staticmethod
    def queue_of(campaign: Campaign) -> QueueView | None:
        return queue_view(campaign) if uses_queue(campaign.kind) else None

    # ------------------------------------------------------------------------------------------
    # Saving.

    def _draft(self, user_id: str, body: Any, current: Campaign | None) -> CampaignDraft:
        now = self.clock()
        fields = None if current is None else {
            "name": current.name, "kind": current.kind, "site_id": current.site_id,
            "source": current.source, "per_run": current.per_run, "schedule": current.schedule,
            "options": current.options, "catch_up_seconds": current.catch_up_seconds}
        try:
            return check_campaign(self.runs, user_id, body, current=fields,
                                  min_interval_seconds=self.min_interval_seconds,
                                  today=now.date())
        except RunNotFound:
            raise NotFoundError("site not found") from None

    def create(self, user_id: str, body: Any) -> Campaign:
        """Check and store a new campaign (active, first fire from now). 400/404 on bad input;
        nothing is stored then."""
        draft = self._draft(user_id, body, None)
        return self.store.create_campaign(Campaign(
            id="", user_id=user_id, name=draft.name, kind=draft.kind, site_id=draft.site_id,
            options=draft.options, source=draft.source, per_run=draft.per_run,
            schedule=draft.schedule.as_dict(), catch_up_seconds=draft.catch_up_seconds,
            next_fire_at=draft.schedule.first_fire(self.clock()),
            queue={"cursor": 0, "cycle": 0, "retry": []}))

    def update(self, user_id: str, campaign_id: str, body: Any) -> Campaign:
        """Change some fields; the whole campaign is checked again. A new schedule counts from
        now; a new source starts its queue from the top (and revives a completed campaign)."""
        current = self.get(user_id, campaign_id)
        if isinstance(body, Mapping) and not body:
            raise InvalidCampaign("nothing to change")
        draft = self._draft(user_id, body, current)
        changes: dict[str, Any] = {
            "name": draft.name, "site_id": draft.site_id, "options": draft.options,
            "per_run": draft.per_run, "catch_up_seconds": draft.catch_up_seconds,
            "schedule": draft.schedule.as_dict(), "source": draft.source}
        if draft.source != current.source:
            changes["queue"] = {"cursor": 0, "cycle": 0, "retry": [],
                                "harvested": current.last_run_id}
            if current.status == "completed":
                changes["status"] = "active"
        if changes["schedule"] != current.schedule or changes.get("status") == "active":
            changes["next_fire_at"] = draft.schedule.first_fire(self.clock())
        return self._update(current, changes)

    def _update(self, current: Campaign, changes: dict[str, Any]) -> Campaign:
        try:
            return self.store.update_campaign(current.user_id, current.id, changes,
                                              expected_revision=current.revision)
        except ConflictError:
            raise CampaignConflict("the campaign changed meanwhile (it fired or was "
                                   "edited); reload and try again") from None
        except NotFoundError:
            raise CampaignNotFound("campaign not found") from None

    def delete(self, user_id: str, campaign_id: str) -> None:
        """The campaign and its fires go; its runs stay."""
        self.get(user_id, campaign_id)
        try:
            self.store.delete_campaign(user_id, campaign_id)
        except NotFoundError:
            raise CampaignNotFound("campaign not found") from None

    def pause(self, user_id: str, campaign_id: str) -> Campaign:
        """Stop future fires (a run in progress goes on)."""
        current = self.get(user_id, campaign_id)
        if current.status != "active":
            raise CampaignConflict(f"a {current.status} campaign cannot be paused")
        return self._update(current, {"status": "paused"})

    def resume(self, user_id: str, campaign_id: str) -> Campaign:
        """Fire again from now on: the fires a pause skipped are not caught up."""
        current = self.get(user_id, campaign_id)
        if current.status != "paused":
            raise CampaignConflict(f"a {current.status} campaign cannot be resumed")
        schedule = stored_schedule(current.schedule)
        return self._update(current, {"status": "active",
                                      "next_fire_at": schedule.first_fire(self.clock())})

    def run_now(self, user_id: str, campaign_id: str) -> Run:
        """Fire now, beside the schedule: the run, or CampaignConflict (409) saying why none
        could start (the previous run is still active, the queue is used up, the source or the
        site refused)."""
        for _ in range(3):                      # lost to a scheduled fire: look again
            campaign = self.get(user_id, campaign_id)
            now = self.clock()
            decision = self._decide(campaign, now, now, manual=True)
            if decision.run is None:
                raise CampaignConflict(decision.reason or "no run could start")
            fire = Fire(id=fire_key(campaign.id, now, manual=True), campaign_id=campaign.id,
                        user_id=campaign.user_id, scheduled_for=now, outcome="started",
                        reason="run now", fired_at=now)
            result = self._write(campaign, [fire], decision.changes, decision)
            if result.won and result.run is not None:
                return result.run
        raise CampaignConflict("the campaign keeps changing; try again")

    # ------------------------------------------------------------------------------------------
    # Firing.

    def fire_due(self, now: datetime | None = None) -> list[FireResult]:
        """Fire every due campaign (every user's): the scheduler's tick. One campaign's trouble
        never stops the others'."""
        now = now or self.clock()
        results = []
        for campaign in self.store.list_due_campaigns(now, limit=DUE_PER_TICK):
            try:
                result = self.fire(campaign, now)
            except StoreError as exc:          # e.g. contention: the next tick tries again
                log.warning("campaign %s did not fire: %s", campaign.id, exc)
                continue
            if result is not None:
                results.append(result)
        return results

    def fire(self, campaign: Campaign, now: datetime) -> FireResult | None:
        """Fire ``campaign``'s due times at ``now`` (DESIGN.md's rules); None when none is due."""
        if campaign.status != "active" or campaign.next_fire_at is None:
            return None
        plan = plan_due(stored_schedule(campaign.schedule), campaign.next_fire_at, now,
                        campaign.catch_up_seconds)
        if plan.run_at is None and not plan.late and not plan.late_older:
            return None
        fires = _passed_over(campaign, plan, now)
        changes: dict[str, Any] = {"next_fire_at": plan.next_fire_at}
        decision = None
        if plan.run_at is not None:
            decision = self._decide(campaign, plan.run_at, now, manual=False)
            fires.append(Fire(id=fire_key(campaign.id, plan.run_at), campaign_id=campaign.id,
                              user_id=campaign.user_id, scheduled_for=plan.run_at,
                              outcome=decision.outcome, reason=decision.reason, fired_at=now))
            changes.update(decision.changes)
        return self._write(campaign, fires, changes, decision)

    def _write(self, campaign: Campaign, fires: list[Fire], changes: dict[str, Any],
               decision: _Decision | None) -> FireResult:
        run = decision.run if decision is not None else None
        try:
            _, stored = self.store.fire_campaign(
                campaign.id, expected_revision=campaign.revision, fires=fires,
                changes=changes, run=run, items=decision.items if decision else (),
                outbox=self.runs.notices.campaign_fired(campaign, fires))
        except DuplicateError as exc:      # a fire id twice: never expected, say so loudly
            log.error("campaign %s: %s", campaign.id, exc)
            return FireResult(campaign_id=campaign.id, won=False)
        except (ConflictError, NotFoundError):      # another instance (or an edit) was first
            return FireResult(campaign_id=campaign.id, won=False)
        if stored is not None:
            log.info("campaign %s fired: run %s (%d items)", campaign.id, stored.id,
                     stored.total)
            try:
                self.runs.wake()
            except Exception:        # the heartbeat starts it anyway
                log.exception("starting run %s at once failed", stored.id)
        for fire in fires:
            if fire.outcome != "started":
                log.info("campaign %s: fire %s %s (%s)", campaign.id, fire.scheduled_for,
                         fire.outcome, fire.reason)
        return FireResult(campaign_id=campaign.id, won=True,
                          outcome=decision.outcome if decision else None,
                          reason=decision.reason if decision else "", run=stored, fires=fires)

    def _decide(self, campaign: Campaign, due_at: datetime, now: datetime, *, manual: bool
                ) -> _Decision:
        """What the fire at ``due_at`` does: start a run, or be skipped or failed (why)."""
        previous = self.store.get_run(campaign.last_run_id) if campaign.last_run_id else None
        if previous is not None and previous.status in BLOCKING:
            return _Decision("skipped", "previous run still active")
        site = self.store.get_site(campaign.user_id, campaign.site_id)
        if site is None:
            return _Decision("failed", "the site was deleted")
        refused = self._refused(site)
        if refused:
            return _Decision("failed", refused)
        schedule = stored_schedule(campaign.schedule)
        today = schedule.local_date(due_at)
        try:
            batch = next_batch(campaign, previous, today=today, now=now, context=self.sources)
        except SourceError as exc:
            return _Decision("failed", str(exc))
        except Exception as exc:                 # a source bug must not stall the campaign
            log.exception("campaign %s: its source failed", campaign.id)
            return _Decision("failed", f"the source failed: {exc}"[:300])
        if batch.exhausted:
            return _Decision("skipped", "the list is used up; the campaign is completed",
                             changes={"status": "completed"})
        try:
            prepared, _ = self.runs.prepare(campaign.user_id, campaign.kind, campaign.site_id,
                                            batch.items, campaign.options, today=today)
        except InvalidRun as exc:
            details = f": {'; '.join(exc.details[:3])}" if exc.details else ""
            return _Decision("failed", f"{exc.message}{details}"[:300])
        except RunNotFound:
            return _Decision("failed", "the site was deleted")
        changes = {"queue": batch.queue} if batch.queue is not None else {}
        fire_id = fire_key(campaign.id, due_at, manual=manual)
        run = Run(id="", user_id=campaign.user_id, kind=campaign.kind, site_id=campaign.site_id,
                  options=dict(campaign.options), campaign_id=campaign.id, fire_id=fire_id,
                  created_at=now, updated_at=now)
        return _Decision("started", "run now" if manual else "", run=run,
                         items=[NewItem(key=p.key, input=p.input, label=p.label)
                                for p in prepared], changes=changes)

    def _refused(self, site: Any) -> str | None:
        """Why a WordPress site would refuse every post (its credentials), or None. A site
        that is merely unreachable now gets its run: the run retries and says so."""
        if site.kind != "wordpress" or self.publishing is None:
            return None
        try:
            check = self.publishing.check_connection(site)
        except Exception as exc:   # a check that breaks decides nothing
            log.warning("connection check of site %s failed: %s", site.id, exc)
            return None
        if not check.ok and check.code in REFUSED:
            return f"the site refused the credentials: {check.message}"[:300]
        return None


def _passed_over(campaign: Campaign, plan: DuePlan, now: datetime) -> list[Fire]:
    """The fires recorded ``missed``: late beyond the catch-up window, or coalesced into the
    one that runs; the oldest of a long outage summed up in one record."""
    fires: list[Fire] = []

    def add(when: datetime, reason: str) -> None:
        fires.append(Fire(id=fire_key(campaign.id, when), campaign_id=campaign.id,
                          user_id=campaign.user_id, scheduled_for=when, outcome="missed",
                          reason=reason, fired_at=now))

    late = f"more than {campaign.catch_up_seconds} s late (the portal was not running)"
    if plan.late_older and plan.late_oldest is not None:
        add(plan.late_oldest, f"{late}; {plan.late_older} fires from this one on were "
                              "missed too, not listed one by one")
    for when in plan.late:
        add(when, late)
    if plan.coalesced_older and plan.coalesced_oldest is not None:
        add(plan.coalesced_oldest, f"coalesced; {plan.coalesced_older} fires from this one "
                                   "on were coalesced too, not listed one by one")
    for when in plan.coalesced:
        add(when, "coalesced")
    return fires
