#!/usr/bin/env bash
# Set up everything and serve LesionLoop at http://127.0.0.1:8000 in embedded mode
# (SQLite, in-process worker; no services needed). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-lesionloop.settings.dev}
PYTHON=.venv/bin/python
$PYTHON manage.py migrate --noinput -v0
$PYTHON manage.py demo_users
if $PYTHON manage.py help demo_data >/dev/null 2>&1; then
  $PYTHON manage.py demo_data
fi
echo "Serving LesionLoop at http://127.0.0.1:${PORT:-8000}/ (Ctrl-C stops)"
exec $PYTHON manage.py serve "127.0.0.1:${PORT:-8000}"
