"""Socket.IO handlers: authenticated connect, the user's room, steering and replay.

Every handler checks that the run belongs to ``current_user``; a foreign or missing run gets an
``automation_error`` to the asking socket only and changes nothing. Handlers never raise out:
an unexpected error is logged and answered with ``automation_error``.

The steering handlers also answer a client that asks for an acknowledgement (Flask-SocketIO
sends a handler's return value as the ack): ``{ok: true, run_id, status}`` with the run's status
after the request, or ``{ok: false, run_id?, error_type, message}``. A page can then tell a
refusal from a request that never arrived, instead of taking any later event as the answer.
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


Ack = dict[str, Any]


def _error(error_type: str, message: str, *, run_id: str | None = None,
           recoverable: bool = False) -> Ack:
    """Emit ``automation_error`` to the asking socket and return the same refusal as an ack."""
    refusal = _refusal(error_type, message, run_id)
    payload: dict[str, Any] = {"error_type": error_type, "message": message,
                               "recoverable": recoverable, "timestamp": timestamp()}
    if run_id:
        payload["run_id"] = run_id
    emit("automation_error", payload)          # inside a handler: to the asking socket only
    return refusal


def _refusal(error_type: str, message: str, run_id: str | None) -> Ack:
    answer: Ack = {"ok": False, "error_type": error_type, "message": message}
    if run_id:
        answer["run_id"] = run_id
    return answer


def _run_id(data: Any) -> str | None:
    run_id = data.get("automation_id") if isinstance(data, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


def _guarded(handler: Callable[[Any], Ack | None]) -> Callable[..., Ack | None]:
    """Authenticated user required; no exception escapes a handler (its refusal is the ack)."""

    @functools.wraps(handler)
    def wrapper(data: Any = None, *_: Any) -> Ack | None:
        try:
            if not current_user.is_authenticated:
                return _error("unauthorized", "login required: sign in again")
            return handler(data)
        except Exception:
            log.exception("socket handler %s failed", handler.__name__)
            message = "the server could not handle that request"
            try:
                return _error("server_error", message, run_id=_run_id(data), recoverable=True)
            except Exception:
                log.exception("answering a failed socket handler failed")
                return _refusal("server_error", message, _run_id(data))

    return wrapper


def _steer(action: str, data: Any) -> Ack:
    """pause/resume/cancel: the events (automation_paused ...) go to the user's room; the ack
    to the asker is the run's status after the request, or the refusal."""
    run_id = _run_id(data)
    if run_id is None:
        return _error("bad_request", "automation_id is required")
    manager = services().runs
    try:
        run = getattr(manager, action)(run_id, current_user_id())
    except RunNotFound:
        return _error("not_found", "run not found", run_id=run_id)
    except TransitionNotAllowed as exc:
        return _error("invalid_state", str(exc), run_id=run_id, recoverable=True)
    return {"ok": True, "run_id": run.id, "status": run.status}


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
def on_pause(data: Any) -> Ack:
    return _steer("pause", data)


@_guarded
def on_resume(data: Any) -> Ack:
    return _steer("resume", data)


@_guarded
def on_cancel(data: Any) -> Ack:
    return _steer("cancel", data)


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
