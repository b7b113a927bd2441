#!/usr/bin/env bash
# Start a Dramatiq worker for one queue against DRAMATIQ_BROKER_URL (redis:// or amqp://).
#   scripts/worker.sh default     CPU work: ingest, pre-processing, export (2 processes x 4 threads)
#   scripts/worker.sh gpu-infer   pre-segmentation (1 process x 1 thread, prefetch 1)
#   scripts/worker.sh gpu-train   retraining (1 process x 1 thread, prefetch 1)
set -euo pipefail
cd "$(dirname "$0")/.."
queue=${1:?usage: scripts/worker.sh default|gpu-infer|gpu-train}
: "${DRAMATIQ_BROKER_URL:?set DRAMATIQ_BROKER_URL, e.g. redis://127.0.0.1:6379/0}"
# rundramatiq starts the dramatiq CLI in a new process that does not run manage.py's
# path set-up: give it the source root (platform/) and the repository root (ml/).
export PYTHONPATH="$PWD/platform:$PWD${PYTHONPATH:+:$PYTHONPATH}"
case "$queue" in
  default) exec .venv/bin/python manage.py rundramatiq --queues default --processes 2 --threads 4 ;;
  gpu-infer|gpu-train)
    export dramatiq_queue_prefetch=1
    exec .venv/bin/python manage.py rundramatiq --queues "$queue" --processes 1 --threads 1 ;;
  *) echo "unknown queue $queue (default, gpu-infer, gpu-train)" >&2; exit 2 ;;
esac
