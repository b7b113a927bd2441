"""The listener process: the SCP (``network``) wired to the services, plus the
completion loop that turns quiet received studies into studies."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from . import network, services, staging

log = logging.getLogger(__name__)


def listener_config(**overrides: Any) -> network.ListenerConfig:
    values = {
        "ae_title": settings.LESIONLOOP_DICOM_AE_TITLE,
        "port": settings.LESIONLOOP_DICOM_PORT,
        "host": settings.LESIONLOOP_DICOM_BIND,
        "allowed_aets": list(settings.LESIONLOOP_DICOM_ALLOWED_AETS),
        "allowed_networks": list(settings.LESIONLOOP_DICOM_ALLOWED_NETWORKS),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return network.ListenerConfig(**values)


# Each association runs in its own thread: its batch of row updates lives here.
_local = threading.local()


def _flush() -> None:
    batch = getattr(_local, "batch", None)
    if batch is not None:
        batch.flush()


def _association_end() -> None:
    _flush()  # nothing left after the release flush; an abort's was flushed already
    _local.batch = None
    connection.close()  # each association thread has its own connection


def _refused(calling_ae: str, address: str, reason: str) -> None:
    try:
        services.association_refused_record(calling_ae=calling_ae, address=address, reason=reason)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()


class Listener:
    """The SCP and the completion loop; ``start()`` / ``stop()``."""

    def __init__(
        self,
        config: network.ListenerConfig | None = None,
        *,
        quiet_seconds: float | None = None,
        poll_seconds: float = 1.0,
        complete: bool = True,
        fsync: str | None = None,
    ) -> None:
        self.config = config or listener_config()
        self.quiet_seconds = (
            settings.LESIONLOOP_DICOM_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
        )
        self.poll_seconds = poll_seconds
        self.complete = complete
        self.fsync = settings.LESIONLOOP_DICOM_FSYNC if fsync is None else fsync
        if self.fsync not in staging.FSYNC_MODES:
            raise ValueError(f"fsync must be one of {staging.FSYNC_MODES}, not {self.fsync!r}")
        self.syncer: staging.StagingSyncer | None = None
        self.server: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1]) if self.server else self.config.port

    def start(self) -> Listener:
        services.received_staging_recover()
        interval = settings.LESIONLOOP_DICOM_FSYNC_INTERVAL_MS / 1000
        self.syncer = staging.StagingSyncer(interval, per_object=self.fsync == staging.FSYNC_OBJECT)
        if self.fsync == staging.FSYNC_BATCH:
            self.syncer.start()
        self.server = network.start_listener(
            self.config,
            on_store=self._store,
            on_flush=_flush,
            on_association_end=_association_end,
            on_refused=_refused,
        )
        if self.complete:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._completion_loop, name="dicom-completion", daemon=True
            )
            self._thread.start()
        log.info(
            "DICOM listener %s on %s:%s (quiet period %ss, fsync %s)",
            self.config.ae_title,
            self.config.host,
            self.port,
            self.quiet_seconds,
            self.fsync,
        )
        return self

    def _store(self, received: network.Received) -> None:
        batch = getattr(_local, "batch", None)
        if batch is None:
            batch = _local.batch = services.ReceiveBatch(received.calling_ae, syncer=self.syncer)
        batch.store(received)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.server is not None:
            self.server.shutdown()  # pynetdicom's: stops serving and closes the socket
            self.server = None
        if self.syncer is not None:
            self.syncer.stop()  # a last round: what was answered is on disk
            self.syncer = None

    def _completion_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                close_old_connections()
                services.received_studies_complete(
                    quiet_seconds=self.quiet_seconds, syncer=self.syncer
                )
            except Exception:  # keep receiving whatever happens to one completion
                log.exception("completion round failed")
        connection.close()
