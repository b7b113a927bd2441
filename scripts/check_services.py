#!/usr/bin/env python3
"""Check that the services the test suite needs answer; name the missing one clearly."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def main() -> int:
    db = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lesionloop"))
    redis = urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    amqp = urlparse(os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"))
    missing = []
    if not reachable(db.hostname or "127.0.0.1", db.port or 5432):
        missing.append(
            f"PostgreSQL is not reachable at {db.hostname}:{db.port or 5432} (DATABASE_URL). "
            "Start it, e.g. pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    if not reachable(redis.hostname or "127.0.0.1", redis.port or 6379):
        missing.append(
            f"Redis is not reachable at {redis.hostname}:{redis.port or 6379} (REDIS_URL). "
            "Start it, e.g. redis-server --daemonize yes --port 6379 --save ''"
        )
    if not reachable(amqp.hostname or "127.0.0.1", amqp.port or 5672):
        missing.append(
            f"RabbitMQ is not reachable at {amqp.hostname}:{amqp.port or 5672} (AMQP_URL); the "
            "broker-by-URL test needs it. Start it, e.g. rabbitmq-server -detached"
        )
    for line in missing:
        print(f"check_services: {line}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
