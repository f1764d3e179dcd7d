"""The bare Flask-SocketIO app the progress benchmark compares the portal with.

Threading mode, the same ping settings as the portal, served by gunicorn with startup.sh's
settings (bench/common.py ``baseline_server``). A client joins the room named in its ``room``
query parameter; ``POST /emit`` starts one thread per room that sends ``count`` events of the
portal's ``automation_progress`` shape, ``interval`` seconds apart, with a plain
``socketio.emit(..., to=room)``: no store, no auth, no throttling. ``GET /emit`` answers how many
emitter threads are still running.

Not a benchmark by itself: ``python bench/baseline_app.py`` says so and exits.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from flask_socketio import SocketIO, emit, join_room


def create_app() -> Flask:
    """A new app with its own SocketIO (no module-level state: gunicorn calls this once)."""
    app = Flask(__name__)
    socketio = SocketIO(app, async_mode="threading", ping_interval=25, ping_timeout=60)
    running: dict[str, int] = {"threads": 0}
    lock = threading.Lock()

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        room = request.args.get("room")
        if room:
            join_room(room)
        emit("connection_status", {"status": "connected", "timestamp": _now()})

    def emitter(room: str, count: int, interval: float) -> None:
        try:
            start = time.monotonic()
            for seq in range(1, count + 1):
                delay = start + (seq - 1) * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                socketio.emit("automation_progress", {
                    "run_id": room, "kind": "test", "seq": seq, "stage": "processing",
                    "message": f"Processing item {seq} of {count}", "timestamp": _now(),
                    "percent": round(100 * seq / count, 1),
                    "data": {"item": f"item{seq}", "index": seq, "total": count}}, to=room)
        finally:
            with lock:
                running["threads"] -= 1

    @app.post("/emit")
    def start_emitting() -> Any:
        plan = request.get_json(silent=True) or {}
        rooms = [str(r) for r in plan.get("rooms", [])]
        count, interval = int(plan.get("count", 0)), float(plan.get("interval", 0.1))
        with lock:
            running["threads"] += len(rooms)
        for room in rooms:
            threading.Thread(target=emitter, args=(room, count, interval), daemon=True).start()
        return jsonify({"rooms": len(rooms), "count": count}), 202

    @app.get("/emit")
    def emitting() -> Any:
        with lock:
            return jsonify({"running": running["threads"]})

    @app.get("/")
    def page() -> Any:
        return "<!doctype html><title>baseline</title><p>bare Flask-SocketIO</p>"

    return app


def _now() -> str:
    return datetime.now(UTC).isoformat()


if __name__ == "__main__":
    print("bench/baseline_app.py is served by bench/progress.py (gunicorn); nothing to run.")
