#!/usr/bin/env bash
# Azure App Service startup command (Configuration > General settings > Startup Command:
# "bash startup.sh"). One gunicorn worker: runs, leases and Socket.IO rooms live in this
# process; gthread with many threads, because every open WebSocket holds one thread.
# GUNICORN_BIND_HOST exists for local tests (127.0.0.1); Azure needs the default 0.0.0.0.
set -euo pipefail
cd "$(dirname "$0")"
export TICKZEN_ENV="${TICKZEN_ENV:-production}"
exec gunicorn --worker-class gthread --workers 1 --threads "${GUNICORN_THREADS:-600}" \
  --timeout 120 --bind "${GUNICORN_BIND_HOST:-0.0.0.0}:${PORT:-8000}" --no-control-socket \
  'main_portal_app:create_app()'
