#!/usr/bin/env bash
# Run the whole test suite against real PostgreSQL and Redis at their standard local
# ports (override with DATABASE_URL and REDIS_URL). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/check_services.py
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)," \
         "or set CHROMIUM=/path/to/chromium." >&2
    exit 1
  fi
fi
# The compose files are validated without an engine (tests/docker_tests): the docker CLI's
# compose plugin or Debian's docker-compose.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's docker-compose (validates docker/compose*.yml) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  else
    echo "The compose tests need 'docker compose' or Debian's docker-compose (apt-get install docker-compose)." >&2
    exit 1
  fi
fi
export DJANGO_SETTINGS_MODULE=lesionloop.settings.test
exec .venv/bin/python -m pytest "$@"
