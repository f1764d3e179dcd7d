"""Socket.IO handlers: authenticated connect, the user's room, steering and replay.

Every handler checks that the run belongs to ``current_user``; a foreign or missing run gets an
``automation_error`` to the asking socket only and changes nothing. Handlers never raise out:
an unexpected error is logged and answered with ``automation_error``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import SocketIO, emit, join_room

from portal.access import current_user_id
from portal.run_views import snapshot_entries
from portal.services import services
from runner.errors import RunNotFound, TransitionNotAllowed
from runner.progress import timestamp, user_room
from storage.housekeeping import pruned_seq

log = logging.getLogger(__name__)


def _error(error_type: str, message: str, *, run_id: str | None = None,
           recoverable: bool = False) -> None:
    payload: dict[str, Any] = {"error_type": error_type, "message": message,
                               "recoverable": recoverable, "timestamp": timestamp()}
    if run_id:
        payload["run_id"] = run_id
    emit("automation_error", payload)          # inside a handler: to the asking socket only


def _run_id(data: Any) -> str | None:
    run_id = data.get("automation_id") if isinstance(data, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


def _guarded(handler: Callable[[Any], None]) -> Callable[..., None]:
    """Authenticated user required; no exception escapes a handler."""

    @functools.wraps(handler)
    def wrapper(data: Any = None, *_: Any) -> None:
        try:
            if not current_user.is_authenticated:
                _error("unauthorized", "login required")
                return
            handler(data)
        except Exception:
            log.exception("socket handler %s failed", handler.__name__)
            try:
                _error("server_error", "the server could not handle that request",
                       run_id=_run_id(data), recoverable=True)
            except Exception:
                log.exception("answering a failed socket handler failed")

    return wrapper


def _steer(action: str, data: Any) -> None:
    """pause/resume/cancel: the answer (automation_paused ...) goes to the user's room."""
    run_id = _run_id(data)
    if run_id is None:
        _error("bad_request", "automation_id is required")
        return
    manager = services().runs
    try:
        getattr(manager, action)(run_id, current_user_id())
    except RunNotFound:
        _error("not_found", "run not found", run_id=run_id)
    except TransitionNotAllowed as exc:
        _error("invalid_state", str(exc), run_id=run_id, recoverable=True)


def on_connect(auth: Any = None) -> bool | None:
    """Refuse anonymous sockets; join ``user_<id>``; send the status and the snapshot."""
    try:
        if not current_user.is_authenticated:
            log.info("refused an anonymous socket from %s", request.remote_addr)
            return False
        user_id = current_user_id()
        join_room(user_room(user_id))
        # The unread count comes with the connection, so the bell needs no HTTP call that could
        # race a sign-out on another tab.
        emit("connection_status", {"status": "connected",
                                   "message": "Connected to TickZen automation server",
                                   "timestamp": timestamp(),
                                   "unread": services().store.count_unread_notifications(
                                       user_id)})
        emit("automation_snapshot",
             {"runs": snapshot_entries(services().runs.snapshot(user_id))})
    except Exception:
        log.exception("socket connect failed")
        return False
    return None


@_guarded
def on_pause(data: Any) -> None:
    _steer("pause", data)


@_guarded
def on_resume(data: Any) -> None:
    _steer("resume", data)


@_guarded
def on_cancel(data: Any) -> None:
    _steer("cancel", data)


@_guarded
def on_replay(data: Any) -> None:
    """Re-send the stored ``automation_progress`` events after ``after_seq``, in seq order,
    to this socket only; where retention removed them, the run's snapshot first."""
    run_id = _run_id(data)
    after = data.get("after_seq", 0) if isinstance(data, dict) else 0
    if run_id is None or isinstance(after, bool) or not isinstance(after, int) or after < 0:
        _error("bad_request", "replay needs automation_id and a non-negative after_seq")
        return
    manager = services().runs
    try:
        run = manager.get(run_id, current_user_id())
        events = manager.events(run_id, current_user_id(), after)
    except RunNotFound:
        _error("not_found", "run not found", run_id=run_id)
        return
    if pruned_seq(run) > after:
        # Retention removed the events asked for: the run's state stands in for them.
        emit("automation_snapshot", {"runs": snapshot_entries([(run, manager.items(run.id))]),
                                     "replay_of": run.id})
    for event in events:
        emit("automation_progress", event)


def register(socketio: SocketIO) -> None:
    """Attach the handlers to ``socketio``."""
    socketio.on_event("connect", on_connect)
    socketio.on_event("pause_automation", on_pause)
    socketio.on_event("resume_automation", on_resume)
    socketio.on_event("cancel_automation", on_cancel)
    socketio.on_event("replay", on_replay)
