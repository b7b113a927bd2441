"""Writing files and folders so that readers never see half of them, and their sha256.

The one implementation for ``ml`` and the platform (``lesionloop.studies.storage``
delegates here). A file is written to a temporary name in its own folder, flushed
and fsynced, then ``os.replace``-d over the target, so a reader sees the old bytes
or the new ones and a crash after the rename keeps the new ones. A folder is built
under a temporary sibling name (``temp_dir_beside``) and renamed into place
(``publish_dir``).

Standard library only (no NumPy, torch or Django): the web process imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Missing parent folders are created. On any error the temporary file is removed
    and the error re-raised; ``path`` is then unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """``obj`` as indented, key-sorted JSON with a final newline, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 (FIPS 180-4) of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 (FIPS 180-4) of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def temp_dir_beside(target: Path) -> Path:
    """A new empty folder ``.<name>.tmp-<random>`` next to ``target`` (parents created),
    to build ``target``'s content in before ``publish_dir``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    return tmp


def publish_dir(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is swapped out, then deleted."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(out, trash)
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)
