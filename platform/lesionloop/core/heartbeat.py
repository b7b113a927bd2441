"""A heartbeat written by a background thread while a worker runs a claimed job.

The sweeper (``lesionloop.loop.sweeper``) takes a running job whose heartbeat is older
than ``LESIONLOOP_JOB_STALE_S`` for one whose worker died and queues it again; the
thread keeps a live job's heartbeat fresh however long one step (a C call, a GPU
kernel) takes, since it only needs the GIL for a moment every few seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from django.db import connection

log = logging.getLogger(__name__)


class Heartbeat:
    """``with Heartbeat(beat, every_s=5):`` calls ``beat()`` every ``every_s`` seconds
    in a daemon thread until the block ends. ``beat`` returns False once the claim is
    no longer ours (the job was requeued); ``lost`` says so afterwards. The thread's
    own database connection is closed when it stops."""

    def __init__(self, beat: Callable[[], bool], *, every_s: float) -> None:
        if every_s <= 0:
            raise ValueError(f"every_s must be positive, got {every_s}")
        self._beat = beat
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._every_s):
                try:
                    if not self._beat():
                        self.lost = True
                        # finished meanwhile, or requeued by the sweeper
                        log.info("heartbeat: the job is no longer running under this claim")
                        return
                except Exception:  # a database hiccup: try again at the next beat
                    log.exception("heartbeat write failed")
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
