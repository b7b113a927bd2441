"""Fuzz the API and the ingest with malformed input; count 5xx and stuck studies.

Three kinds of case, drawn from one seed:

- ``dicom``: the synthetic study with one header mutated (NUL and control characters,
  huge strings, non-finite and absurd numbers, wrong value representations) in the CT
  or in every file, uploaded as a zip and ingested synchronously;
- ``zip``: malformed archives (random bytes, truncated, zip-slip, a zero bomb,
  truncated DICOM, nested zips) uploaded and ingested;
- ``api``: every API route (from the URL resolver) with malformed ids, query
  parameters (NUL, non-ASCII digits, huge numbers), headers (If-Match,
  X-Lease-Client, Content-Encoding) and bodies (deep JSON, lone surrogates, NaN,
  garbage bytes).

A case fails when the answer is a 5xx, or when it leaves a study ``received`` or
``processing`` with no job queued for it. Target: 0 and 0.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ll_bad \\
    DJANGO_SETTINGS_MODULE=lesionloop.settings.test \\
    python benchmarks/fuzz_api.py --cases 300 --seed 1

It runs in-process with Django's test client against a throw-away test database
(``test_<name>_fuzz``). ``tests/platform_tests/core/test_fuzz_api.py`` runs ~50 cases
of the same code in CI.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (keyword, value) header mutations; values are written raw, whatever their VR says.
DICOM_MUTATIONS: list[tuple[str, Any]] = [
    ("PatientID", "PAT\x00001"),
    ("PatientID", "x" * 20_000),
    ("PatientID", "\x01\x02\x1b[31m\x7f"),
    ("PatientName", "DOE\x00^JOHN"),
    ("PatientName", "Ж" * 5000),
    ("StudyDescription", "SRS\x00HEAD\x00"),
    ("StudyDescription", "\x00" * 64),
    ("SeriesDescription", "T1\x00 POST"),
    ("StudyDate", "2026\x000101"),
    ("StudyInstanceUID", "1.2.\x00.3"),
    ("RescaleSlope", "inf"),
    ("RescaleSlope", "nan"),
    ("RescaleSlope", "0"),
    ("RescaleSlope", "1e308"),
    ("RescaleSlope", "abc"),
    ("RescaleIntercept", "1e308"),
    ("RescaleIntercept", "-1e308"),
    ("RescaleIntercept", "nan"),
    ("PixelSpacing", ["0", "0"]),
    ("PixelSpacing", ["-1", "-1"]),
    ("PixelSpacing", ["nan", "nan"]),
    ("PixelSpacing", ["1e300", "1e300"]),
    ("PixelSpacing", ["1e-9", "1e-9"]),
    ("PixelSpacing", ["inf", "1"]),
    ("PixelSpacing", "abc"),
    ("PixelSpacing", ["1"]),
    ("SliceThickness", "nan"),
    ("SpacingBetweenSlices", "-5"),
    ("ImagePositionPatient", ["nan", "0", "0"]),
    ("ImagePositionPatient", ["1e300", "0", "0"]),
    ("ImageOrientationPatient", ["0", "0", "0", "0", "0", "0"]),
    ("ImageOrientationPatient", ["nan", "0", "0", "0", "1", "0"]),
    ("Rows", 1),
    ("BitsAllocated", 8),
    ("SOPInstanceUID", "\x00"),
    ("Modality", "C\x00T"),
]

ID_VALUES = ["0", "99999999", "9" * 30]
QUERY_VALUES = ["%00", "a%00b", "%C2%B2", "%D9%A3", "9" * 5000, "-1", "1e3", "%FF%FE", "%ED%A0%80"]
QUERY_NAMES = ["search", "status", "ordering", "slice", "study", "model_version", "actor",
               "event_type", "page", "page_size", "channel"]  # fmt: skip
IF_MATCH_VALUES = ['"²"', '"٣"', '"' + "9" * 5000 + '"', 'W/"', '"-1"', '"\x00"', "*", '""']
LEASE_CLIENTS = ["\x00", "a" * 65, "ü", "../x"]


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


JSON_BODIES: list[bytes] = [
    _nested(10_000),
    _nested(200),
    b'{"decision": "\\ud800"}',
    b'{"\\udfff": 1}',
    b'{"decision": "accepted"',
    b"\xff\xfe\x00",
    b"NaN",
    b'{"take_over": 1e999}',
    b'{"training_eligible": "yes", "decisions": {"\xc2\xb2": "accepted"}}',
    b'{"decisions": {"' + b"9" * 5000 + b'": "accepted"}}',
    b'{"decisions": [1, 2]}',
    b'{"decision": "accepted\\u0000"}',
    b'{"name": "' + b"x" * 100_000 + b'"}',
    b"[]",
    b"null",
    b"",
]


@dataclass
class FuzzReport:
    tried: int = 0
    server_errors: int = 0
    stuck: int = 0
    by_kind: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        return (
            f"cases tried: {self.tried} ({kinds}); 5xx: {self.server_errors}; "
            f"studies not in a final state: {self.stuck}"
        )


class Fuzzer:
    """Draws and runs cases against the Django test client as ``admin`` (every route)."""

    def __init__(self, *, admin: Any, dicom_dir: Path, work_dir: Path, seed: int) -> None:
        from rest_framework.test import APIClient

        self.client = APIClient()
        self.client.force_authenticate(user=admin)
        self.admin = admin
        self.dicom_dir = dicom_dir
        self.work_dir = work_dir
        self.rng = random.Random(seed)
        self.report = FuzzReport()
        self.routes = _api_routes()

    # --- bookkeeping ----------------------------------------------------------------

    def _record(self, kind: str, what: str, response: Any) -> None:
        self.report.tried += 1
        self.report.by_kind[kind] += 1
        if response is not None and response.status_code >= 500:
            self.report.server_errors += 1
            self.report.failures.append(f"{kind} {what}: {response.status_code}")

    def _check_studies(self, what: str) -> None:
        from lesionloop.studies.models import Job, Study

        waiting = Job.objects.filter(state__in=["queued", "running"]).values("study_id")
        stuck = Study.objects.filter(status__in=["received", "processing"]).exclude(pk__in=waiting)
        for study in stuck:
            self.report.stuck += 1
            self.report.failures.append(f"{what}: study {study.pk} stuck {study.status}")
            Study.objects.filter(pk=study.pk).update(status="failed")

    # --- uploads ----------------------------------------------------------------------

    def _upload_and_ingest(self, kind: str, what: str, payload: bytes, name: str) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile

        from lesionloop.loop import flows
        from lesionloop.studies.models import Job

        upload = SimpleUploadedFile(name, payload, content_type="application/zip")
        try:
            response = self.client.post("/api/studies/", {"files": [upload]}, format="multipart")
        except Exception as exc:  # noqa: BLE001 - an exception out of the client is a 500
            self._record(kind, f"{what} ({type(exc).__name__}: {exc})", _Status(500))
            return
        self._record(kind, what, response)
        for job in Job.objects.filter(kind="ingest", state="queued"):
            try:
                flows.study_ingest(job_id=job.pk)
            except Exception as exc:  # noqa: BLE001
                self.report.failures.append(f"{what}: ingest raised {type(exc).__name__}: {exc}")
        self._check_studies(what)

    def dicom_case(self) -> None:
        import pydicom

        keyword, value = self.rng.choice(DICOM_MUTATIONS)
        everywhere = self.rng.random() < 0.7
        case = self.work_dir / "dicom_case"
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(self.dicom_dir, case)
        for path in sorted(case.rglob("*.dcm")):
            if not everywhere and "ct" not in path.parent.name.lower():
                continue
            ds = pydicom.dcmread(path)
            try:
                _set_raw(ds, keyword, value)
                ds.save_as(path)
            except Exception:  # noqa: BLE001 - pydicom cannot write it: skip the file
                continue
        what = f"dicom {keyword}={str(value)[:40]!r} ({'all' if everywhere else 'ct'})"
        self._upload_and_ingest("dicom", what, _zip_folder(case), "study.zip")

    def zip_case(self) -> None:
        maker = self.rng.choice(ZIP_MAKERS)
        payload = maker(self)
        self._upload_and_ingest("zip", f"zip {maker.__name__}", payload, "study.zip")

    # --- the API ----------------------------------------------------------------------

    def api_case(self, study_id: int, lesion_id: int) -> None:
        method, template = self.rng.choice(self.routes)
        ids = {"pk": study_id, "lesion_id": lesion_id, "version_id": 1, "run_id": 1}
        if self.rng.random() < 0.2:
            ids = {k: self.rng.choice(ID_VALUES) for k in ids}
        path = _fill(template, ids)
        query = "&".join(
            f"{self.rng.choice(QUERY_NAMES)}={self.rng.choice(QUERY_VALUES)}"
            for _ in range(self.rng.randint(0, 3))
        )
        url = f"/api/{path}" + (f"?{query}" if query else "")
        headers: dict[str, str] = {}
        if self.rng.random() < 0.5:
            headers["HTTP_IF_MATCH"] = self.rng.choice(IF_MATCH_VALUES)
        if self.rng.random() < 0.3:
            headers["HTTP_X_LEASE_CLIENT"] = self.rng.choice(LEASE_CLIENTS)
        body, content_type = self._body(path)
        if "gzip" in content_type:
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
            content_type = "application/octet-stream"
        what = f"{method} {url[:120]} {content_type} {body[:40]!r}"
        try:
            call = getattr(self.client, method.lower())
            if method in ("GET", "HEAD"):
                response = call(url, **headers)
            else:
                response = call(url, data=body, content_type=content_type, **headers)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            else:
                response.content  # noqa: B018 - render it: a render failure is a 500 too
        except Exception as exc:  # noqa: BLE001 - an exception out of the client is a 500
            self._record("api", f"{what} ({type(exc).__name__}: {str(exc)[:200]})", _Status(500))
            return
        self._record("api", what, response)

    def _body(self, path: str) -> tuple[bytes, str]:
        if path.endswith("mask/") and self.rng.random() < 0.6:
            choice = self.rng.choice(["random", "gzip-garbage", "empty", "labels"])
            if choice == "random":
                return self.rng.randbytes(self.rng.randint(0, 20_000)), "application/octet-stream"
            if choice == "gzip-garbage":
                return b"\x1f\x8b" + self.rng.randbytes(200), "gzip"
            if choice == "labels":
                return _random_label_mask(self.rng), "gzip"
            return b"", "application/octet-stream"
        if self.rng.random() < 0.1:
            return self.rng.randbytes(64), "multipart/form-data; boundary=x"
        return self.rng.choice(JSON_BODIES), "application/json"


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def _set_raw(ds: Any, keyword: str, value: Any) -> None:
    """Set ``keyword`` to ``value`` without pydicom's value checks."""
    from pydicom import config
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag)
    if isinstance(value, list) and vr in ("DS", "IS"):
        value = "\\".join(value)
    saved = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        if isinstance(value, str) and vr in ("DS", "IS", "US", "UL"):
            ds.add_new(tag, vr if vr in ("DS", "IS") else "UN", value.encode("latin-1"))
        else:
            ds.add_new(tag, vr, value)
    finally:
        config.settings.writing_validation_mode = saved


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def _zip_entries(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def random_bytes(f: Fuzzer) -> bytes:
    return b"PK\x03\x04" + f.rng.randbytes(f.rng.randint(0, 5000))


def truncated(f: Fuzzer) -> bytes:
    whole = _zip_folder(f.dicom_dir)
    return whole[: f.rng.randint(10, len(whole) - 1)]


def zip_slip(f: Fuzzer) -> bytes:
    return _zip_entries({"ok.dcm": b"x", "../../escape.dcm": b"y"})


def zero_bomb(f: Fuzzer) -> bytes:
    buf = io.BytesIO()
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.dcm", "w", force_zip64=True) as member:
            if f.rng.random() < 0.5:
                member.write(b"\0" * 128 + b"DICM")
            for _ in range(64):
                member.write(zeros)
    return buf.getvalue()


def truncated_dicom(f: Fuzzer) -> bytes:
    entries = {}
    for path in sorted(f.dicom_dir.rglob("*.dcm")):
        data = path.read_bytes()
        cut = f.rng.randint(0, len(data)) if f.rng.random() < 0.3 else len(data)
        entries[path.relative_to(f.dicom_dir).as_posix()] = data[:cut]
    return _zip_entries(entries)


def nested_zip(f: Fuzzer) -> bytes:
    return _zip_entries({"inner.zip": _zip_entries({"a.dcm": b"\0" * 128 + b"DICM" + b"\0" * 10})})


def garbage_members(f: Fuzzer) -> bytes:
    return _zip_entries({f"{i}.dcm": f.rng.randbytes(f.rng.randint(0, 300)) for i in range(20)})


ZIP_MAKERS = [random_bytes, truncated, zip_slip, zero_bomb, truncated_dicom, nested_zip,
              garbage_members]  # fmt: skip


def _random_label_mask(rng: random.Random) -> bytes:
    import numpy as np

    from tests.platform_tests.studies.helpers import SHAPE

    labels = np.random.default_rng(rng.randint(0, 10**6)).integers(0, 65535, SHAPE)
    from lesionloop.studies import storage

    return storage.gzip_array(labels.astype(np.uint16), dtype="uint16")


def complete_prepared(study_id: int) -> None:
    """Give a test helper's fake prepared study (``make_study``) the CT geometry a real
    ingest writes, so its exports work: a missing file is not what is being fuzzed."""
    from lesionloop.studies import storage
    from tests.platform_tests.studies.helpers import SHAPE, SPACING

    geometry = {
        "shape_dhw": list(SHAPE),
        "spacing_mm": list(SPACING),
        "origin_xyz_mm": [0.0, 0.0, 0.0],
        "direction": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    }
    meta = {"grid": {**geometry, "preset": "tiny"}, "ct_geometry": geometry}
    (storage.prepared_dir(study_id) / "study.json").write_text(json.dumps(meta))


def _api_routes() -> list[tuple[str, str]]:
    """(method, route) for every API route: every method on every pattern."""
    from django.urls import get_resolver

    resolver = get_resolver("lesionloop.api_urls")
    routes: list[tuple[str, str]] = []
    stack = [("", p) for p in resolver.url_patterns]
    while stack:
        prefix, pattern = stack.pop()
        route = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            stack.extend((route, p) for p in pattern.url_patterns)
            continue
        if "(?P" in route or "schema" in route or "docs" in route:
            continue
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            routes.append((method, route.lstrip("^").rstrip("$")))
    return sorted(routes)


def _fill(template: str, ids: dict[str, Any]) -> str:
    import re

    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids.get(m.group(1), 1)), template)


def run_fuzz(
    *, cases: int, seed: int, dicom_dir: Path, work_dir: Path, admin: Any, study: Any
) -> FuzzReport:
    """Run ``cases`` cases (about 10 % DICOM, 10 % zips, 80 % API calls)."""
    fuzzer = Fuzzer(admin=admin, dicom_dir=dicom_dir, work_dir=work_dir, seed=seed)
    lesion = study.lesions.first()
    for i in range(cases):
        kind = ("dicom", "zip", *(("api",) * 8))[i % 10]
        if kind == "dicom":
            fuzzer.dicom_case()
        elif kind == "zip":
            fuzzer.zip_case()
        else:
            fuzzer.api_case(study.pk, lesion.pk if lesion else 1)
    fuzzer._check_studies("end")
    return fuzzer.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    import django
    from django.conf import settings
    from django.test.utils import setup_test_environment

    django.setup()
    settings.DATABASES["default"].setdefault("TEST", {})
    settings.DATABASES["default"]["TEST"]["NAME"] = (
        f"test_{settings.DATABASES['default']['NAME']}_fuzz"
    )
    setup_test_environment()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory(prefix="ll-fuzz-") as tmp:
            settings.STORAGE_ROOT = Path(tmp) / "storage"
            settings.STORAGE_ROOT.mkdir()
            report = _run_standalone(args.cases, args.seed, Path(tmp))
    finally:
        connection.creation.destroy_test_db(settings.DATABASES["default"]["NAME"], verbosity=0)
    print(report.line())
    for line in report.failures[:50]:
        print("  " + line)
    return 0 if report.server_errors == 0 and report.stuck == 0 else 1


def _run_standalone(cases: int, seed: int, tmp: Path) -> FuzzReport:
    import warnings

    from lesionloop.accounts.services import user_create
    from ml.synthetic import generate_study
    from tests.platform_tests.studies.helpers import make_study

    warnings.simplefilter("ignore")
    admin = user_create(username="fuzz-admin", password="fuzz-pass-1", role="admin")
    generate_study(tmp / "case", seed=1, grid="tiny")
    study = make_study()
    complete_prepared(study.pk)
    started = time.monotonic()
    report = run_fuzz(
        cases=cases,
        seed=seed,
        dicom_dir=tmp / "case" / "dicom",
        work_dir=tmp,
        admin=admin,
        study=study,
    )
    print(f"{time.monotonic() - started:.0f} s")
    return report


if __name__ == "__main__":
    raise SystemExit(main())
