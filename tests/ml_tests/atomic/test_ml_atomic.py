"""ml.atomic: whole files and folders or nothing, and their sha256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    publish_dir,
    sha256_bytes,
    sha256_file,
    temp_dir_beside,
)


def test_atomic_write_bytes_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.bin"]


def test_atomic_write_bytes_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    atomic_write_bytes(tmp_path / "x", b"1")
    assert synced


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_sha256_helpers(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_publish_dir_swaps_a_folder_in(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for content in ("first", "second"):
        tmp = temp_dir_beside(out)
        (tmp / "f.txt").write_text(content)
        publish_dir(tmp, out)
    assert (out / "f.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_importing_ml_atomic_is_light() -> None:
    code = "import sys, ml.atomic; sys.exit(any(m in sys.modules for m in ('torch', 'numpy')))"
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True)
    assert result.returncode == 0, result.stderr
