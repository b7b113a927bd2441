"""When received objects reach the disk: per-object fsync, or group commit.

A C-STORE success status is a promise that the object is kept. Writing it under a
temporary name and renaming it into place keeps that promise through a crash of the
listener process (the kernel's page cache holds the bytes and the name). Only a crash
of the operating system or a power loss can take back what was not yet fsynced:

- ``object`` (``LESIONLOOP_DICOM_FSYNC=object``): the file and its folder are fsynced
  before the status is sent; nothing answered with success is ever lost.
- ``batch`` (the default): a ``StagingSyncer`` thread fsyncs what was written, files
  first and then their folders, every ``LESIONLOOP_DICOM_FSYNC_INTERVAL_MS`` (500 ms);
  an OS crash or power loss can lose the objects of that last window, which the
  sender was told were stored. Like PostgreSQL's ``synchronous_commit = off``: the
  data is never corrupted, only the most recent window may be missing. A study is
  always fsynced (``paths_sync``) before it is completed and ingested.

Standard library only; the listener owns the syncer (``lesionloop.pacs.listener``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

FSYNC_OBJECT = "object"
FSYNC_BATCH = "batch"
FSYNC_MODES = (FSYNC_BATCH, FSYNC_OBJECT)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by name (a folder's fsync makes its entries durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def paths_sync(paths: Iterable[Path], *, missing_ok: bool = False) -> int:
    """fsync every file in ``paths``, then each of their folders once; the number of
    files synced. A file already on disk costs a few microseconds. ``missing_ok``: a
    file gone meanwhile is skipped. Raises ``OSError``."""
    folders: dict[Path, None] = {}
    count = 0
    for path in paths:
        try:
            fsync_path(path)
        except FileNotFoundError:
            if not missing_ok:
                raise
            continue
        folders[path.parent] = None
        count += 1
    for folder in folders:
        fsync_path(folder)
    return count


def object_write(path: Path, data: Iterable[bytes | memoryview], *, sync: bool) -> bool:
    """Write the chunks of ``data`` to ``path`` unless it exists: False when it did (the
    first copy is kept). Atomic: written under a temporary name in the same folder,
    then hard-linked to ``path``, which fails if another thread got there first, so
    two associations sending the same object at once store and count it once (a file
    system without hard links gets a rename, which cannot tell).

    With ``sync`` the file is fsynced before it gets its name and the folder after, so
    both survive a power loss when this returns; without it they survive a crash of
    this process only. A new folder is fsynced into its parent at once (once per
    study). On error nothing is left at ``path`` and the temporary file is removed."""
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        fsync_path(folder.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in data:
                fh.write(chunk)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if sync:
        fsync_path(folder)
    return True


class StagingSyncer:
    """When the listener's staged objects reach the disk, and which ones have.

    ``write(path, chunks)`` stages one object. With ``per_object`` it is fsynced with
    it (``object`` mode); else it is queued, and a background thread (``start()``)
    fsyncs the files queued since its last round, then their folders, every
    ``interval_s`` (``batch`` mode, group commit); ``stop()`` runs a last round.
    Either way the syncer remembers what is on disk, so ``study_sync`` before a
    completion fsyncs only what is not (queued, or staged by an earlier process).

    A round that fails (``OSError``, e.g. EIO) is logged and kept in ``error`` until a
    round succeeds: ``write`` then raises, and the listener answers Out of Resources
    (0xA700) instead of success, since it could not keep its promise. The failed files
    stay queued for the next round and for ``study_sync``.
    """

    def __init__(self, interval_s: float = 0.5, *, per_object: bool = False) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.interval_s = interval_s
        self.per_object = per_object
        self.error: str | None = None
        self.rounds = 0
        self._pending: dict[Path, None] = {}
        self._synced: set[Path] = set()  # on disk, not yet taken by a completion
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, path: Path, data: Iterable[bytes | memoryview]) -> bool:
        """Stage one object (``object_write``); False when it was there already."""
        if self.per_object:
            written = object_write(path, data, sync=True)
            if written:
                with self._lock:
                    self._synced.add(path)
            return written
        if self.error is not None:  # the disk failed us: promise nothing more
            raise OSError(f"staging fsync failing ({self.error})")
        written = object_write(path, data, sync=False)
        if written:
            self.add(path)
        return written

    def study_sync(self, files: list[Path]) -> int:
        """Make sure ``files`` and their folders are on disk, fsyncing only those this
        syncer has not synced yet; they are forgotten (a completion takes them). The
        number of files fsynced. Raises ``OSError``."""
        with self._lock:
            unknown = [p for p in files if p not in self._synced]
            self._synced.difference_update(files)
            for path in unknown:
                self._pending.pop(path, None)
        try:
            return paths_sync(unknown)
        except OSError:
            with self._lock:
                self._pending.update(dict.fromkeys(unknown))
            raise

    def add(self, path: Path) -> None:
        with self._lock:
            self._pending[path] = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def start(self) -> StagingSyncer:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dicom-fsync", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self.sync_round()

    def sync_round(self) -> int:
        """fsync everything added so far (files, then folders); the number of files."""
        with self._lock:
            batch, self._pending = list(self._pending), {}
        if not batch:
            return 0
        try:
            # a file that completion already took (and synced) is skipped
            count = paths_sync(batch, missing_ok=True)
            with self._lock:
                self._synced.update(p for p in batch if p.exists())
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("fsync of %d received objects failed: %s", len(batch), self.error)
            with self._lock:
                self._pending = dict.fromkeys(batch) | self._pending
            return 0
        self.error = None
        self.rounds += 1
        return count

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sync_round()
