"""Safe unpacking of uploaded zip archives.

A zip can name entries that escape the target folder (``../../etc/passwd``,
absolute paths: "zip-slip") or expand to far more bytes than it occupies (a zip
bomb). Both are refused with an ``IngestError`` before anything is written outside
``dest``; the byte limit is enforced on the bytes actually inflated, not on the
sizes the archive declares.

Work per member is bounded too. Only members that start like DICOM (the 128-byte
preamble and ``DICM``, or a raw data set whose first tag is in group 0002 or 0008) are
inflated; of any other member only its first ``_HEAD`` bytes are written (so the
ingest report still names it as not DICOM), whatever its size: a 1 MB zip of 1 GiB of
zeros costs milliseconds. A DICOM member is refused (``archive_too_large``) beyond
``max_member_bytes``, or once it has inflated past ``RATIO_FLOOR_BYTES`` at more than
``max_ratio`` times its compressed size (images compress 2-10x; zeros 1000x).
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ml.imaging.errors import IngestError

DEFAULT_MAX_UNZIPPED_BYTES = int(os.environ.get("LESIONLOOP_MAX_UNZIPPED_BYTES", 8 * 1024**3))
DEFAULT_MAX_MEMBERS = int(os.environ.get("LESIONLOOP_MAX_ZIP_MEMBERS", 50_000))
DEFAULT_MAX_MEMBER_BYTES = int(os.environ.get("LESIONLOOP_MAX_ZIP_MEMBER_BYTES", 2 * 1024**3))
DEFAULT_MAX_RATIO = 200
RATIO_FLOOR_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_HEAD = 132  # preamble + "DICM"
_RAW_GROUPS = (b"\x02\x00", b"\x08\x00")  # little-endian group 0002 / 0008


def looks_like_dicom(head: bytes) -> bool:
    """Whether the first bytes of a file can start a DICOM file: Part 10 (preamble and
    ``DICM``) or a raw little-endian data set beginning in group 0002 or 0008."""
    return head[128:132] == b"DICM" or head[:2] in _RAW_GROUPS


def _safe_relative(name: str) -> PurePosixPath | None:
    """The entry's path relative to the target, or None when it would escape it."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return None
    parts: list[str] = []
    for part in PurePosixPath(norm).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _open_zip(zip_path: str | os.PathLike[str], zname: str) -> zipfile.ZipFile:
    """The archive opened for reading; ``IngestError("bad_archive")`` if it cannot be."""
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(
            "bad_archive", f"the zip archive cannot be read ({exc})", file=zname
        ) from exc


def _member_target(info: zipfile.ZipInfo, dest_dir: Path) -> Path:
    """Where the entry lands under ``dest_dir``; refuses entries that would escape it."""
    rel = _safe_relative(info.filename)
    target = (dest_dir / rel).resolve() if rel is not None else None
    if target is None or (target != dest_dir and dest_dir not in target.parents):
        raise IngestError(
            "unsafe_archive",
            f"zip entry {info.filename!r} points outside the upload folder (zip-slip); "
            "the archive was refused",
            file=info.filename,
        )
    return target


def _plan(
    infos: list[zipfile.ZipInfo], dest_dir: Path
) -> tuple[list[tuple[zipfile.ZipInfo, Path]], int]:
    """Regular-file entries and their targets, and the bytes they declare.

    Refuses unsafe names and symbolic links before anything is written.
    """
    plan: list[tuple[zipfile.ZipInfo, Path]] = []
    declared = 0
    for info in infos:
        target = _member_target(info, dest_dir)
        if info.is_dir():
            continue
        mode = (info.external_attr >> 16) & 0xFFFF
        if stat.S_ISLNK(mode):
            raise IngestError(
                "unsafe_archive",
                f"zip entry {info.filename!r} is a symbolic link; the archive was refused",
                file=info.filename,
            )
        declared += info.file_size
        plan.append((info, target))
    return plan, declared


def _check_count(n_members: int, max_members: int, zname: str) -> None:
    """Refuse an archive with more than ``max_members`` entries."""
    if n_members > max_members:
        raise IngestError(
            "archive_too_large",
            f"the zip holds {n_members} entries; the limit is {max_members}",
            file=zname,
        )


def _check_declared(declared: int, max_bytes: int, zname: str) -> None:
    """Refuse an archive whose declared uncompressed size (bytes) exceeds ``max_bytes``."""
    if declared > max_bytes:
        raise IngestError(
            "archive_too_large",
            f"the zip would expand to {declared / 1e6:.1f} MB; the limit is "
            f"{max_bytes / 1e6:.1f} MB",
            file=zname,
        )


def _inflate(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    written: int,
    limits: _Limits,
) -> int:
    """Write one entry to ``target`` in 1 MiB chunks; return the running byte total.

    Counts the bytes actually inflated, so a lying header stops at the limits. A member
    that does not start like DICOM stops after its first ``_HEAD`` bytes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(info) as src, open(target, "wb") as dst:
            head = src.read(_HEAD)
            written = limits.count(info, len(head), len(head), written)
            dst.write(head)
            if not looks_like_dicom(head):
                return written  # not DICOM: its head is enough for the report
            member = len(head)
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                member += len(chunk)
                written = limits.count(info, member, len(chunk), written)
                dst.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise IngestError(
            "bad_archive", f"zip entry cannot be extracted ({exc})", file=info.filename
        ) from exc
    return written


class _Limits:
    """The byte limits of one extraction: total, per member and per compression ratio."""

    def __init__(self, max_bytes: int, max_member_bytes: int, max_ratio: float, zip_size: int):
        self.max_bytes = max_bytes
        self.max_member_bytes = max_member_bytes
        self.max_ratio = max_ratio
        self.zip_size = zip_size

    def count(self, info: zipfile.ZipInfo, member: int, added: int, written: int) -> int:
        """The new running total; ``archive_too_large`` when a limit is passed."""
        written += added
        if written > self.max_bytes:  # a lying header: stop inflating now
            raise IngestError(
                "archive_too_large",
                f"the zip expands beyond the limit of {self.max_bytes / 1e6:.1f} MB",
                file=info.filename,
            )
        if member > self.max_member_bytes:
            raise IngestError(
                "archive_too_large",
                f"zip entry expands beyond the per-file limit of "
                f"{self.max_member_bytes / 1e6:.1f} MB",
                file=info.filename,
            )
        compressed = max(1, min(info.compress_size, self.zip_size))
        if member > RATIO_FLOOR_BYTES and member > self.max_ratio * compressed:
            raise IngestError(
                "archive_too_large",
                f"zip entry expands more than {self.max_ratio:g} times its compressed size "
                "(a zip bomb?); the archive was refused",
                file=info.filename,
            )
        return written


def safe_extract(
    zip_path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_UNZIPPED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> list[Path]:
    """Extract regular files of ``zip_path`` under ``dest``; return their paths.

    ``dest`` should be a fresh temporary folder: on refusal, what was already
    written stays there for the caller to delete with the folder.
    """
    dest_dir = Path(dest).resolve()
    dest_dir.mkdir(parents=True, exist_ok=True)
    zname = Path(zip_path).name
    zf = _open_zip(zip_path, zname)
    with zf:
        infos = zf.infolist()
        _check_count(len(infos), max_members, zname)
        plan, declared = _plan(infos, dest_dir)
        _check_declared(declared, max_bytes, zname)
        limits = _Limits(max_bytes, max_member_bytes, max_ratio, Path(zip_path).stat().st_size)
        written = 0
        out: list[Path] = []
        for info, target in plan:
            written = _inflate(zf, info, target, written, limits)
            out.append(target)
    return out
