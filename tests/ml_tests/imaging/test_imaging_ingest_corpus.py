"""A corpus nobody here wrote: pydicom's own test files (big endian, no meta, JPEG of
every kind, RT objects, truncated files, odd VRs ...). Fed to ingest alone, each ends
in success or a specific ``IngestError`` code, never another exception or a hang; as a
stray file inside a synthetic study it never stops the study and is listed as ignored.
"""

from __future__ import annotations

import logging
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import SimpleITK as sitk

from ml.imaging.dicom_io import IngestResult, ingest
from ml.imaging.errors import INGEST_ERROR_CODES, IngestError

pydicom_data = pytest.importorskip("pydicom.data")

PER_FILE_TIMEOUT_S = 20
CORPUS = sorted(Path(p) for p in pydicom_data.get_testdata_files() if Path(p).is_file())
# A representative few, run on every test run: CT / MR slices, big endian, no preamble,
# no meta, truncated, lossy JPEG, JPEG 2000, deflate, multi-frame, RT objects, non-DICOM.
FAST = {
    "CT_small.dcm", "MR_small_bigendian.dcm", "no_meta.dcm", "MR_truncated.dcm",
    "JPEG-lossy.dcm", "JPEG2000.dcm", "image_dfl.dcm", "rtstruct.dcm", "rtplan_truncated.dcm",
    "badVR.dcm", "README.txt",
}  # fmt: skip


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"ingest ran over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _outcome(folder: Path) -> IngestResult | IngestError:
    with _time_limit(PER_FILE_TIMEOUT_S):
        try:
            return ingest(folder)
        except IngestError as exc:
            return exc


@pytest.fixture(autouse=True)
def _quiet_pydicom(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pydicom")


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) > 50
    assert {f.name for f in CORPUS} >= FAST


@pytest.mark.filterwarnings("ignore")
def test_every_file_alone_ends_in_success_or_a_specific_code(tmp_path: Path) -> None:
    outcomes: dict[str, str] = {}
    for i, f in enumerate(CORPUS):
        folder = tmp_path / str(i)
        folder.mkdir()
        shutil.copy(f, folder / f.name)
        out = _outcome(folder)
        outcomes[str(f)] = out.code if isinstance(out, IngestError) else "ok"
    assert set(outcomes.values()) <= set(INGEST_ERROR_CODES) | {"ok"}, outcomes
    # None of them is a CT + MR study.
    assert "ok" not in outcomes.values()


def _stray_in_study(tiny_study: Path, tmp_path: Path, stray: Path) -> None:
    up = tmp_path / "upload"
    shutil.copytree(tiny_study / "dicom", up)
    shutil.copy(stray, up / f"stray_{stray.name}")
    out = _outcome(up)
    assert isinstance(out, IngestResult), f"{stray.name}: {out}"
    ignored = [r for r in out.report["ignored"] if f"stray_{stray.name}" in str(r)]
    assert ignored, (stray.name, out.report["ignored"])
    assert any(f"stray_{stray.name}" in str(r) for r in out.report["rows"])
    # The study's own volumes are untouched: the tiny CT grid and a known lesion voxel.
    gt = sitk.ReadImage(str(tiny_study / "ground_truth_ct.nii.gz"))
    assert out.ct.GetSize() == gt.GetSize()
    assert out.ct.GetOrigin() == pytest.approx(gt.GetOrigin(), abs=1e-3)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(FAST & {f.name for f in CORPUS}))
def test_a_stray_file_never_stops_the_study(tiny_study: Path, tmp_path: Path, name: str) -> None:
    _stray_in_study(tiny_study, tmp_path, next(f for f in CORPUS if f.name == name))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("stray", CORPUS, ids=[f.name for f in CORPUS])
def test_every_corpus_file_as_a_stray_never_stops_the_study(
    tiny_study: Path, tmp_path: Path, stray: Path
) -> None:
    _stray_in_study(tiny_study, tmp_path, stray)


def test_a_corrupt_stray_is_ignored_but_a_corrupt_slice_is_named(
    tiny_study: Path, tmp_path: Path
) -> None:
    garbage = b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"garbage" * 20
    up = tmp_path / "upload"
    shutil.copytree(tiny_study / "dicom", up)
    (up / "broken.dcm").write_bytes(garbage)
    res = ingest(up)
    assert [r["code"] for r in res.report["ignored"] if r.get("file") == "broken.dcm"] == [
        "corrupt_dicom"
    ]
    # The same garbage in place of a CT slice leaves a gap: the broken file is the reason.
    slice_5 = sorted((up / "ct").glob("*.dcm"))[5]
    slice_5.write_bytes(garbage)
    (up / "broken.dcm").unlink()
    with pytest.raises(IngestError) as info:
        ingest(up)
    assert (info.value.code, info.value.file) == ("corrupt_dicom", f"ct/{slice_5.name}")
