"""No patient data in logs (core/logscrub.py): a study with a known patient name and ID
is uploaded and ingested, its name is searched on the worklist through a real
runserver request handler, a gunicorn access line is written, and every log record
(root, ``django.server``, ``gunicorn.access``, pydicom and its warnings) is captured:
neither the name nor the ID appears anywhere, while each source did log."""

from __future__ import annotations

import logging
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lesionloop.core.logscrub import SCRUBBED, install, scrub

FAMILY, GIVEN, PATIENT_ID = "Zyxwvutsky", "Quimbelina", "PID8842731"
NAME = f"{FAMILY}^{GIVEN}"
SECRETS = [FAMILY, GIVEN, PATIENT_ID]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[_Capture]:
    """Every record of the process at DEBUG, including loggers that do not propagate."""
    from django.core.servers.basehttp import get_internal_wsgi_application

    get_internal_wsgi_application()  # its django.setup() reconfigures logging: first
    install()
    handler = _Capture()
    names = ["", "django.server", "gunicorn.access", "gunicorn.error", "pydicom", "py.warnings"]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    with warnings.catch_warnings():
        # route warnings into logging, as install() does outside pytest's own capture
        warnings.simplefilter("always")
        warnings.showwarning = logging._showwarning  # type: ignore[attr-defined]
        yield handler
    for lg, (level, disabled) in zip(loggers, saved, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.disabled = disabled


def _upload_files(case: Path, tmp_path: Path) -> list[SimpleUploadedFile]:
    out = tmp_path / "named"
    shutil.copytree(case / "dicom", out)
    files = []
    for path in sorted(out.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.PatientName = NAME
        ds.PatientID = PATIENT_ID
        # a malformed export: identifiers in date fields, which pydicom quotes when it warns
        ds.StudyDate = FAMILY
        ds.PatientBirthDate = PATIENT_ID
        ds.save_as(path)
        files.append(SimpleUploadedFile(path.name, path.read_bytes()))
    return files


def _ingest(cast: Any, case: Path, tmp_path: Path, capture_on_commit: Any) -> Any:
    from lesionloop.loop import flows
    from lesionloop.studies import services
    from lesionloop.studies.models import Job, Study

    with capture_on_commit(execute=False):
        study = services.study_upload(files=_upload_files(case, tmp_path), user=cast.clinician)
        flows.study_ingest(job_id=Job.objects.get(study_id=study.pk, kind="ingest").pk)
    study = Study.objects.get(pk=study.pk)
    pydicom.dcmread(next((tmp_path / "named").rglob("*.dcm"))).StudyDate  # noqa: B018
    return study


def _runserver_search() -> int:
    """A worklist search through Django's runserver request handler (django.server)."""
    from django.core.servers.basehttp import (
        WSGIRequestHandler,
        WSGIServer,
        get_internal_wsgi_application,
    )

    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(get_internal_wsgi_application())
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    query = urllib.parse.urlencode({"search": NAME, "patient_id": PATIENT_ID})
    url = f"http://127.0.0.1:{server.server_address[1]}/api/studies/?{query}"
    try:
        status = urllib.request.urlopen(url, timeout=30).status  # noqa: S310
    except urllib.error.HTTPError as exc:
        status = exc.code  # anonymous: 403, logged at WARNING with the request line
    thread.join(30)
    server.server_close()
    return status


def _gunicorn_access_line() -> None:
    """gunicorn's access log in its default format (request line, referer)."""
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("accesslog", "-")
    query = f"search={urllib.parse.quote(NAME)}&patient_id={PATIENT_ID}"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/studies/?{query}",
        "PATH_INFO": "/api/studies/",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": f"http://lesionloop/?search={FAMILY}",
    }
    resp = SimpleNamespace(status="200 OK", sent=12, headers=[])
    Logger(cfg).access(resp, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=5))


@pytest.mark.django_db(transaction=True)
def test_no_patient_name_or_id_in_any_log(
    cast: Any,
    synthetic_case: Path,
    tmp_path: Path,
    captured: _Capture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    study = _ingest(cast, synthetic_case, tmp_path, django_capture_on_commit_callbacks)
    assert study.dicom["patient_name"] == NAME  # the data is there, only the logs lack it
    assert _runserver_search() == 403
    _gunicorn_access_line()
    text = "\n".join(captured.lines)
    # each source did log, scrubbed
    assert "pydicom WARNING Invalid value for VR DA" in text, text[-3000:]
    assert "py.warnings WARNING" in text and "UserWarning" in text
    assert (
        f'django.server WARNING "GET /api/studies/?search={SCRUBBED}&patient_id={SCRUBBED}' in text
    )
    assert "gunicorn.access INFO 10.0.0.1 - - " in text
    assert f'?search={SCRUBBED}&patient_id={SCRUBBED} HTTP/1.1" 200 12' in text
    for secret in SECRETS:
        for form in {secret, urllib.parse.quote(secret), secret.upper(), secret.lower()}:
            assert form not in text, [line for line in captured.lines if form in line]


@pytest.mark.parametrize(
    ("logger", "message", "expected"),
    [
        (
            "django.server",
            '"GET /api/studies/?search=DOE%5EJOHN&page=2 HTTP/1.1" 200 5',
            f'"GET /api/studies/?search={SCRUBBED}&page={SCRUBBED} HTTP/1.1" 200 5',
        ),
        ("x", "referer http://h/p?q=DOE#frag", f"referer http://h/p?q={SCRUBBED}#frag"),
        ("x", "/a/?flag&q=", f"/a/?flag&q={SCRUBBED}"),
        ("x", "no query a=b here", "no query a=b here"),  # key=value outside a query
        ("pydicom", "Invalid value for VR DA: 'DOE'.", f"Invalid value for VR DA: '{SCRUBBED}'."),
        ("pydicom", "Invalid value for VR DS: b'12X'.", f"Invalid value for VR DS: '{SCRUBBED}'."),
        ("pydicom", 'Invalid value for VR PN: "O\'Neil"', f"Invalid value for VR PN: '{SCRUBBED}'"),
        ("pynetdicom", "(0010,0010) PN [DOE^JOHN]", f"(0010,0010) PN [{SCRUBBED}]"),
        (
            "py.warnings",
            "/venv/site-packages/pydicom/dataset.py:1: UserWarning: Value 'DOE'",
            f"/venv/site-packages/pydicom/dataset.py:1: UserWarning: Value '{SCRUBBED}'",
        ),
        (
            "py.warnings",
            "/venv/site-packages/django/db/backends/postgresql/base.py:9: RuntimeWarning: "
            'FATAL:  database "ll_x" does not exist',
            "/venv/site-packages/django/db/backends/postgresql/base.py:9: RuntimeWarning: "
            'FATAL:  database "ll_x" does not exist',
        ),
        ("py.warnings", "x.py:1: UserWarning: Value 'DOE'", "x.py:1: UserWarning: Value 'DOE'"),
        ("lesionloop", "found 'CT' and 'MR'", "found 'CT' and 'MR'"),  # our own messages kept
        ("other", "Invalid value for VR IS: 'ID42'", f"Invalid value for VR IS: '{SCRUBBED}'"),
    ],
)
def test_scrub(logger: str, message: str, expected: str) -> None:
    assert scrub(message, logger_name=logger) == expected


def _psycopg_error(database: str) -> str:
    """The text of a real failed connection to a database that does not exist."""
    import psycopg
    from django.db import connection

    db = connection.settings_dict
    try:
        psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"] or "postgres",
            password=db["PASSWORD"] or None,
            dbname=database,
            connect_timeout=10,
        ).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    raise AssertionError(f"database {database} exists")


def _warn_from(module: Any, message: str, category: type[Warning] = RuntimeWarning) -> None:
    """A warning attributed to ``module``'s file, as its own ``warnings.warn`` would be."""
    warnings.warn_explicit(message, category, module.__file__, 1, module=module.__name__)


def _emitters() -> dict[str, Any]:
    import django.db.backends.postgresql.base as django_postgres
    import psycopg
    import pydicom.dataset
    import pydicom.misc
    from pydicom import config
    from pydicom.valuerep import validate_value

    missing_db = "ll_scrub_missing_db"
    return {
        # operational facts stay: the database, host and port an admin must see
        "django-postgres": lambda: _warn_from(django_postgres, _psycopg_error(missing_db)),
        "psycopg": lambda: _warn_from(psycopg, _psycopg_error(missing_db)),
        "our-code": lambda: warnings.warn(f"database '{missing_db}' unreachable", stacklevel=1),
        # DICOM values go: a file of pydicom, a pydicom function naming its caller's file
        "pydicom-file": lambda: _warn_from(pydicom.dataset, f"Patient '{NAME}'", UserWarning),
        "pydicom-stacklevel": lambda: pydicom.misc.warn_and_log(f"Patient name '{NAME}' [{NAME}]"),
        "pydicom-validate": lambda: validate_value("DA", FAMILY, config.WARN),
    }


# (source, what must be in the py.warnings line, what must not)
WARNING_SCOPE = [
    ("django-postgres", ['database "ll_scrub_missing_db"', "port 5432", "base.py"], []),
    ("psycopg", ['database "ll_scrub_missing_db" does not exist'], []),
    ("our-code", ["database 'll_scrub_missing_db' unreachable"], []),
    ("pydicom-file", [f"Patient '{SCRUBBED}'", "pydicom"], [FAMILY, GIVEN]),
    ("pydicom-stacklevel", [f"Patient name '{SCRUBBED}' [{SCRUBBED}]"], [FAMILY, GIVEN]),
    ("pydicom-validate", [f"for VR DA: '{SCRUBBED}'"], [FAMILY]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "kept", "lost"), WARNING_SCOPE, ids=[r[0] for r in WARNING_SCOPE]
)
def test_warnings_lose_quoted_values_only_when_they_come_from_dicom_code(
    captured: _Capture, source: str, kept: list[str], lost: list[str]
) -> None:
    _emitters()[source]()
    # one warning (seen by the handler on py.warnings and again on the root logger)
    lines = sorted({line for line in captured.lines if line.startswith("py.warnings ")})
    assert len(lines) == 1, captured.lines
    for text in kept:
        assert text in lines[0], (text, lines[0])
    for text in lost:
        assert text not in "\n".join(captured.lines), (text, captured.lines)
