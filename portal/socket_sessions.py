"""Closing a user's Socket.IO connections when their sessions end (password change, reset,
sign-out-everywhere, account deletion), on this instance and on every other one.

Each socket of a user is in the room ``user_<id>``. Locally its members are disconnected. With
a Redis message queue the instances share, ``UserRoomsRedisManager`` also publishes a
``close_room`` message marked ``disconnect``: every instance running this manager disconnects
its own members of the room (an instance without it still takes the plain meaning of
``close_room`` and stops sending that room anything). A socket refused this way reconnects
only with a session that is still valid (``connect`` checks it like every request).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from flask import current_app

from runner.progress import user_room

log = logging.getLogger(__name__)

NAMESPACE = "/"


def _disconnect_local(server: Any, room: str, namespace: str = NAMESPACE) -> int:
    """Disconnect this instance's members of ``room``; how many there were."""
    try:
        members = [sid for sid, _eio in server.manager.get_participants(namespace, room)]
    except KeyError:              # nobody ever joined it here
        return 0
    for sid in members:
        server.disconnect(sid, namespace=namespace, ignore_queue=True)
    return len(members)


class UserRoomsRedisManager(socketio.RedisManager):
    """The Redis client manager, able to disconnect a room's members on every instance."""

    def disconnect_room(self, room: str, namespace: str = NAMESPACE) -> None:
        _disconnect_local(self.server, room, namespace)
        self._publish({"method": "close_room", "room": room, "namespace": namespace,
                       "disconnect": True, "host_id": self.host_id})

    def _handle_close_room(self, message: dict[str, Any]) -> None:
        if message.get("disconnect"):
            _disconnect_local(self.server, message.get("room", ""),
                              message.get("namespace") or NAMESPACE)
            return
        super()._handle_close_room(message)


def client_manager(message_queue: str | None) -> Any:
    """The manager ``SocketIO`` should use for ``message_queue`` (None: its own default)."""
    if message_queue and message_queue.startswith(("redis://", "rediss://")):
        return UserRoomsRedisManager(message_queue, channel="flask-socketio")
    return None


def disconnect_user(user_id: str) -> None:
    """Close every socket of ``user_id`` (each tab reconnects only while its session holds)."""
    server = current_app.extensions["socketio"].server
    room = user_room(user_id)
    try:
        if isinstance(server.manager, UserRoomsRedisManager):
            server.manager.disconnect_room(room)
        else:
            _disconnect_local(server, room)
    except Exception:     # the account change itself stands; log why the sockets stayed
        log.exception("could not close the sockets of user %s", user_id)
