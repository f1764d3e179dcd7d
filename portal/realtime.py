"""Socket.IO handlers (skeleton)."""

from flask_socketio import SocketIO


def register(socketio: SocketIO) -> None:
    """Attach the handlers to ``socketio``."""
