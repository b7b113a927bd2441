"""When received objects reach the disk (``pacs.staging``): per-object fsync, group
commit by the syncer, a failing disk. fsync is observed, not faked (the ``fsyncs``
fixture records each call, then makes it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lesionloop.pacs import staging

# (sync, what is fsynced by object_write, in order: a new study folder goes into its
# parent once, then the file before its rename and the folder after it)
WRITES = [
    (True, ["root", "file", "folder"]),
    (False, ["root"]),
]


@pytest.mark.parametrize(("sync", "expected"), WRITES)
def test_object_write_fsyncs_only_when_asked(
    tmp_path: Path, fsyncs: Any, sync: bool, expected: list[str]
) -> None:
    folder = tmp_path / "1.2.3"
    target = folder / "1.2.3.4.dcm"
    staging.object_write(target, [b"DICM", memoryview(b"-data")], sync=sync)
    assert target.read_bytes() == b"DICM-data"
    names = {"root": tmp_path, "folder": folder}
    # the file was fsynced under its temporary name, in the same folder
    seen = ["file" if p.parent == folder and p.name.endswith(".tmp") else p for p in fsyncs.paths]
    assert seen == [names.get(e, e) for e in expected]
    fsyncs.clear()
    staging.object_write(folder / "1.2.3.5.dcm", [b"x"], sync=sync)  # folder exists now
    assert len(fsyncs) == (2 if sync else 0)
    assert sorted(p.name for p in folder.iterdir()) == ["1.2.3.4.dcm", "1.2.3.5.dcm"]


@pytest.mark.parametrize("sync", [True, False])
def test_the_first_copy_of_an_object_wins(tmp_path: Path, sync: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "s" / "1.2.dcm"
    assert staging.object_write(target, [b"first"], sync=sync) is True
    assert staging.object_write(target, [b"second"], sync=sync) is False
    assert target.read_bytes() == b"first"
    # eight associations with the same new object at once: one of them stores it
    other = tmp_path / "s" / "1.3.dcm"
    with ThreadPoolExecutor(8) as pool:
        won = list(
            pool.map(lambda i: staging.object_write(other, [b"%d" % i], sync=sync), range(8))
        )
    assert won.count(True) == 1
    assert other.read_bytes() == b"%d" % won.index(True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["1.2.dcm", "1.3.dcm"]


def test_object_write_leaves_nothing_when_writing_fails(tmp_path: Path) -> None:
    def chunks() -> Any:
        yield b"first half"
        raise OSError("disk full")

    target = tmp_path / "s" / "1.2.dcm"
    with pytest.raises(OSError, match="disk full"):
        staging.object_write(target, chunks(), sync=False)
    assert list((tmp_path / "s").iterdir()) == []


def test_a_round_fsyncs_each_file_then_each_folder_once(tmp_path: Path, fsyncs: Any) -> None:
    syncer = staging.StagingSyncer(interval_s=3600)  # rounds by hand
    files = [tmp_path / d / f"{i}.dcm" for d in ("a", "b") for i in range(3)]
    for path in files:
        staging.object_write(path, [b"x"], sync=False)
        syncer.add(path)
    syncer.add(files[0])  # added twice, synced once
    fsyncs.clear()
    assert syncer.sync_round() == 6
    assert fsyncs.paths == [*files, tmp_path / "a", tmp_path / "b"]
    assert syncer.pending == 0 and syncer.sync_round() == 0


def test_a_file_taken_by_completion_meanwhile_is_skipped(tmp_path: Path) -> None:
    syncer = staging.StagingSyncer(interval_s=3600)
    kept, gone = tmp_path / "s" / "1.dcm", tmp_path / "s" / "2.dcm"
    for path in (kept, gone):
        staging.object_write(path, [b"x"], sync=False)
        syncer.add(path)
    gone.unlink()
    assert syncer.sync_round() == 1 and syncer.error is None
    with pytest.raises(FileNotFoundError):
        staging.paths_sync([gone])


def test_a_failing_fsync_is_reported_kept_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncer = staging.StagingSyncer(interval_s=3600)
    path = tmp_path / "s" / "1.dcm"
    staging.object_write(path, [b"x"], sync=False)
    syncer.add(path)
    real = os.fsync

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(staging.os, "fsync", broken)
    assert syncer.sync_round() == 0
    assert syncer.error is not None and "Input/output error" in syncer.error
    assert syncer.pending == 1  # still owed
    monkeypatch.setattr(staging.os, "fsync", real)
    assert syncer.sync_round() == 1
    assert syncer.error is None and syncer.pending == 0


def test_the_thread_syncs_within_its_interval_and_at_stop(tmp_path: Path) -> None:
    import time

    syncer = staging.StagingSyncer(interval_s=0.05).start()
    first = tmp_path / "s" / "1.dcm"
    staging.object_write(first, [b"x"], sync=False)
    syncer.add(first)
    deadline = time.monotonic() + 5
    while not syncer.rounds and time.monotonic() < deadline:  # a round ends, then counts
        time.sleep(0.01)
    assert syncer.pending == 0 and syncer.rounds >= 1
    syncer._stop.set()  # the thread ends; stop() must still sync what came last
    second = tmp_path / "s" / "2.dcm"
    staging.object_write(second, [b"y"], sync=False)
    syncer.add(second)
    syncer.stop()
    assert syncer.pending == 0


@pytest.mark.parametrize("interval", [0, -0.5])
def test_a_syncer_needs_a_positive_interval(interval: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        staging.StagingSyncer(interval_s=interval)


# (mode, sync rounds before the completion, files the completion must fsync itself)
STUDY_SYNCS = [
    ("object", 0, ["earlier"]),  # fsynced at write; an earlier process's file is not known
    ("batch", 0, ["a", "b", "earlier"]),  # queued, the round has not come
    ("batch", 1, ["earlier"]),
]


@pytest.mark.parametrize(("mode", "rounds", "expected"), STUDY_SYNCS)
def test_completion_fsyncs_only_what_is_not_on_disk(
    tmp_path: Path, fsyncs: Any, mode: str, rounds: int, expected: list[str]
) -> None:
    syncer = staging.StagingSyncer(interval_s=3600, per_object=mode == "object")
    folder = tmp_path / "study"
    files = {name: folder / f"{name}.dcm" for name in ("a", "b", "earlier")}
    assert syncer.write(files["a"], [b"a"]) and syncer.write(files["b"], [b"b"])
    assert not syncer.write(files["b"], [b"again"])  # stored once
    staging.object_write(files["earlier"], [b"e"], sync=False)  # a previous listener's
    for _ in range(rounds):
        syncer.sync_round()
    fsyncs.clear()
    assert syncer.study_sync(list(files.values())) == len(expected)
    assert fsyncs.paths == [*(files[n] for n in expected), folder]
    assert syncer.pending == 0
    fsyncs.clear()
    syncer.study_sync(list(files.values()))  # forgotten: a completion took them
    assert len(fsyncs) == 4


def test_batch_writes_are_refused_while_the_disk_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncer = staging.StagingSyncer(interval_s=3600)
    assert syncer.write(tmp_path / "s" / "1.dcm", [b"x"])
    real = os.fsync

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(staging.os, "fsync", broken)
    syncer.sync_round()
    with pytest.raises(OSError, match="staging fsync failing"):
        syncer.write(tmp_path / "s" / "2.dcm", [b"y"])
    assert not (tmp_path / "s" / "2.dcm").exists()
    with pytest.raises(OSError):
        syncer.study_sync([tmp_path / "s" / "1.dcm"])
    assert syncer.pending == 1  # still owed after the failed completion sync
    monkeypatch.setattr(staging.os, "fsync", real)
    syncer.sync_round()
    assert syncer.error is None and syncer.write(tmp_path / "s" / "2.dcm", [b"y"])
