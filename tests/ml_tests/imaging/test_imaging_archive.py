"""Zip uploads: zip-slip and zip bombs are refused before anything escapes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ml.imaging.archive import safe_extract
from ml.imaging.dicom_io import ingest
from ml.imaging.errors import IngestError

DICM = b"\0" * 128 + b"DICM"


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "name",
    ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "..\\..\\evil.dcm", "C:/evil.dcm"],
)
def test_zip_slip_is_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "up.zip", {"ok/one.dcm": b"x", name: b"payload"})
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(IngestError) as info:
        safe_extract(archive, dest)
    assert info.value.code == "unsafe_archive"
    assert info.value.file == name
    assert not (tmp_path / "evil.dcm").exists() and not (tmp_path / "deep" / "evil.dcm").exists()
    assert not any(dest.rglob("*.dcm")), "nothing is written when any entry is unsafe"


def test_harmless_dotdot_inside_the_folder_is_allowed(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"a/b/../c.dcm": b"x"})
    out = safe_extract(archive, tmp_path / "dest")
    assert [p.relative_to(tmp_path / "dest").as_posix() for p in out] == ["a/c.dcm"]


def test_expansion_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * 2_000_000})
    assert archive.stat().st_size < 20_000
    with pytest.raises(IngestError) as info:
        safe_extract(archive, tmp_path / "dest", max_bytes=1_000_000)
    assert info.value.code == "archive_too_large"
    assert "limit" in info.value.message


def test_lying_sizes_are_caught_while_inflating(tmp_path: Path) -> None:
    # DICOM-looking (preamble + DICM): non-DICOM members are not inflated at all.
    archive = _zip(tmp_path / "liar.zip", {"zeros.bin": DICM + b"\0" * 3_000_000})
    # Patch the declared uncompressed size (local header and central directory) to 10
    # bytes. Python's zipfile stops inflating at the declared size and fails the CRC;
    # our own byte counter is the second line of defence. Either way nothing big lands.
    data = bytearray(archive.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as zf:
        assert zf.infolist()[0].file_size == 10
    with pytest.raises(IngestError) as exc:
        safe_extract(archive, tmp_path / "dest", max_bytes=1_000_000)
    assert exc.value.code in ("archive_too_large", "bad_archive")
    written = tmp_path / "dest" / "zeros.bin"
    assert not written.exists() or written.stat().st_size <= 1_000_000


def test_too_many_entries(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"f{i}.dcm": b"x" for i in range(20)})
    with pytest.raises(IngestError) as info:
        safe_extract(archive, tmp_path / "dest", max_members=10)
    assert info.value.code == "archive_too_large"


def test_broken_zip_and_zip_without_dicom(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(IngestError) as info:
        ingest(broken)
    assert info.value.code in ("bad_archive", "not_dicom")
    archive = _zip(tmp_path / "text.zip", {"notes.txt": b"hello"})
    with pytest.raises(IngestError) as info:
        ingest(archive)
    assert info.value.code == "not_dicom"


def test_ingest_refuses_a_zip_slip_upload(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"../../escape.dcm": b"x"})
    with pytest.raises(IngestError) as info:
        ingest(archive)
    assert info.value.code == "unsafe_archive"


def _streamed_zeros_zip(path: Path, name: str, head: bytes, n_mib: int) -> Path:
    """A zip whose one member is ``head`` then ``n_mib`` MiB of zeros, compressed while
    streaming (never held in memory)."""
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(name, "w", force_zip64=True) as member:
            member.write(head)
            for _ in range(n_mib):
                member.write(zeros)
    return path


def test_a_gib_of_zeros_is_skipped_in_milliseconds(tmp_path: Path) -> None:
    """1 GiB of zeros in a ~1 MB zip: not DICOM, so only its head is ever inflated."""
    import time

    archive = _streamed_zeros_zip(tmp_path / "bomb.zip", "zeros.dcm", b"", 1024)
    assert archive.stat().st_size < 5_000_000
    started = time.monotonic()
    out = safe_extract(archive, tmp_path / "dest")
    assert time.monotonic() - started < 2.0
    assert [p.name for p in out] == ["zeros.dcm"] and out[0].stat().st_size == 132
    with pytest.raises(IngestError) as info:
        ingest(archive)
    assert info.value.code == "not_dicom"


@pytest.mark.parametrize(
    ("head", "limits", "expected"),
    [
        (DICM, {}, "times its compressed"),  # 64 MiB from ~64 KB: over 200x past the 16 MiB floor
        (DICM, {"max_member_bytes": 8 * 1024 * 1024}, "per-file"),
        (DICM, {"max_ratio": 1e9}, None),  # ratio check off: inflates, under every limit
        (
            b"\x08\x00\x05\x00CS",
            {},
            "times its compressed",
        ),  # a raw data set (no preamble) is DICOM too
        (b"%PDF-1.4", {}, None),  # not DICOM: skipped after its head
    ],
)
def test_per_member_limits(
    tmp_path: Path, head: bytes, limits: dict[str, float], expected: str | None
) -> None:
    archive = _streamed_zeros_zip(tmp_path / "up.zip", "a.dcm", head, 64)
    if expected is None:
        out = safe_extract(archive, tmp_path / "dest", **limits)  # type: ignore[arg-type]
        assert len(out) == 1
        return
    with pytest.raises(IngestError) as info:
        safe_extract(archive, tmp_path / "dest", **limits)  # type: ignore[arg-type]
    assert info.value.code == "archive_too_large" and expected in info.value.message
    assert info.value.file == "a.dcm"
