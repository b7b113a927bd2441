"""Embedded mode: an in-process Dramatiq worker on the StubBroker.

With no ``DRAMATIQ_BROKER_URL`` the web process consumes every queue itself, so one
command serves the whole product on one machine with no services. Messages live in
memory, so on start the apps' recovery hooks (``LESIONLOOP_RECOVERY_HOOKS``,
dotted paths to functions taking no arguments) re-enqueue jobs left unfinished.
"""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings
from django.utils.module_loading import autodiscover_modules, import_string

log = logging.getLogger(__name__)
_worker: dramatiq.Worker | None = None


def start_embedded_worker(*, threads: int = 3) -> dramatiq.Worker:
    """Start (once) a worker thread pool consuming every declared queue."""
    global _worker
    if _worker is not None:
        return _worker
    autodiscover_modules("tasks")
    broker = dramatiq.get_broker()
    _worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    _worker.start()
    log.info("embedded worker started on queues %s", sorted(broker.get_declared_queues()))
    for path in getattr(settings, "LESIONLOOP_RECOVERY_HOOKS", []):
        import_string(path)()
    return _worker


def stop_embedded_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None
