#!/bin/sh
# The web process (Procfile, docker-compose.yml): uvicorn with a worker per core.
# Its workers count requests in PROMETHEUS_MULTIPROC_DIR so that /metrics, answered
# by any one of them, reports all of them; the counts of a previous run are removed
# first (only the metric files: the directory may be one the operator chose).
set -eu
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${TMPDIR:-/tmp}/nexai-metrics}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
exec uvicorn nexai.asgi:application \
    --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
    --loop uvloop --http httptools --no-access-log
