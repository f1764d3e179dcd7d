"""Retention as operators and users see it: the ``tickzen`` CLI and a user's disk usage.

``flask --app main_portal_app tickzen prune [--dry-run] [--days N]`` runs one retention pass
(``runner.retention``) and prints each run it removes (or would remove) the event log and
files of, and how many notifications, outbox events and webhook attempts go; ``tickzen usage
EMAIL`` prints what one user's history holds on disk. The daily pass itself runs on the
campaign scheduler of one instance (``RetentionJob``).

A one-off command builds the app as the server does but must not start its background work:
recovering runs in the command's process would mark the live server's runs interrupted.
``init_app`` sees the Flask CLI loading the app for a command other than ``run`` and turns
``TICKZEN_START_RUNNER`` off for that app.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from portal.auth import normalise_email
from portal.services import services
from runner.retention import (
    USAGE_SETTING,
    WEBHOOK_ATTEMPTS_KEPT,
    DiskUsage,
    Retention,
    RetentionReport,
)

tickzen = AppGroup("tickzen", help="TickZen housekeeping: retention and disk usage.")

SERVING_COMMANDS = ("run",)         # Flask CLI commands that serve: they start the runner


def init_app(app: Flask) -> None:
    """Register the ``tickzen`` commands; call before ``services.init_app``."""
    app.cli.add_command(tickzen)
    if one_off_command():
        app.config["TICKZEN_START_RUNNER"] = False


def one_off_command() -> bool:
    """Whether the Flask CLI is loading the app for a one-off command (``tickzen prune``,
    ``shell``, ``routes``): it loads it inside a click context; a server (gunicorn,
    ``python main_portal_app.py``, tests) does not."""
    context = click.get_current_context(silent=True)
    return context is not None and context.command.name not in SERVING_COMMANDS


def human_bytes(count: int) -> str:
    """1536 -> "1.5 KB": what a person reads."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"          # pragma: no cover - the loop returns


def disk_usage(user_id: str, *, live: bool = False) -> dict[str, Any]:
    """The /account page's "Disk used": run files (removed after the retention window) and
    the local archive (kept), as numbers and as text. The daily retention pass's measurement
    when there is one (``measured_at``); measured now when there is none, or ``live``."""
    retention = services().retention
    user = services().store.get_user(user_id)
    kept = None if live or user is None else DiskUsage.from_setting(
        user.settings.get(USAGE_SETTING))
    usage, measured_at = kept if kept else (retention.disk_usage(user_id), None)
    return {"total": human_bytes(usage.total_bytes), "total_bytes": usage.total_bytes,
            "run_files": human_bytes(usage.run_files_bytes), "run_folders": usage.run_folders,
            "archive": human_bytes(usage.archive_bytes), "archive_files": usage.archive_files,
            "retention_days": retention.days,
            "measured_at": measured_at}


def _retention(days: int | None) -> Retention:
    current = services().retention
    if days is None:
        return current
    return Retention(current.store, current.workdirs, days, archive_dir=current.archive_dir)


@tickzen.command("prune")
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="This pass's window instead of TICKZEN_RETENTION_DAYS.")
def prune_command(dry_run: bool, days: int | None) -> None:
    """Remove the event logs and workdirs of runs finished before the retention window."""
    retention = _retention(days)
    if not retention.enabled:
        click.echo("Retention is off (TICKZEN_RETENTION_DAYS=0): nothing is removed.")
        return
    backfilled = 0 if dry_run else retention.backfill()[0]
    report = retention.prune(dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    if backfilled:
        click.echo(f"gave {backfilled} older run records the fields retention selects on")
    for run in report.runs:
        click.echo(f"{verb} run {run.run_id} (user {run.user_id}, finished "
                   f"{run.finished_at:%Y-%m-%d %H:%M} UTC): {run.events} events, "
                   f"{run.files} files, {human_bytes(run.files_bytes)}")
    click.echo(_summary(report, verb))


def _summary(report: RetentionReport, verb: str) -> str:
    text = (f"{verb.capitalize()} the event logs of {len(report.runs)} runs finished before "
            f"{report.cutoff:%Y-%m-%d %H:%M} UTC ({report.events} events) and "
            f"{human_bytes(report.files_bytes)} of run files; runs, items, the ledger and the "
            f"local archive are kept.")
    if report.skipped:
        text += f" {report.skipped} runs changed meanwhile and were left."
    text += (f"\n{verb.capitalize()} {report.notifications} notifications (read before "
             f"{report.cutoff:%Y-%m-%d}, unread before {report.unread_cutoff:%Y-%m-%d}) and "
             f"{report.outbox_events} outbox events with {report.outbox_deliveries} "
             f"finished deliveries.\n{verb.capitalize()} {report.webhook_attempts} webhook "
             f"delivery attempts from before {report.cutoff:%Y-%m-%d} (each webhook's newest "
             f"{WEBHOOK_ATTEMPTS_KEPT} are kept).")
    for error in report.errors:
        text += f"\n{error}"
    return text


@tickzen.command("usage")
@click.argument("email")
def usage_command(email: str) -> None:
    """What one user's history holds on disk."""
    user = services().store.get_user_by_email(normalise_email(email))
    if user is None:
        raise click.ClickException(f"no account {email!r}")
    usage = disk_usage(user.id, live=True)
    click.echo(f"{user.email}: {usage['total']} ({usage['run_files']} of run files in "
               f"{usage['run_folders']} runs, removed after {usage['retention_days']} days; "
               f"{usage['archive']} in the local archive, kept)")
