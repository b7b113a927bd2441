"""No patient data in logs: every log record is scrubbed when it is made.

Two leaks are closed, whatever logger or handler the record goes to (Django's console,
``django.server`` of runserver, gunicorn's access log, a Dramatiq worker's pipe):

- **query strings**: ``GET /api/studies/?search=DOE^JOHN`` names a patient. Every
  ``key=value`` after a ``?`` or ``&`` keeps its key and loses its value
  (``?search=[scrubbed]``), in request lines and referers alike;
- **DICOM parser messages**: pydicom logs (and warns) the offending value,
  ``Invalid value for VR DA: 'DOE^JOHN'.``: in records that can carry DICOM values,
  quoted and bracketed values are replaced. Those are the records of the pydicom,
  pynetdicom and highdicom loggers, any message about a VR, and Python warnings (routed
  into logging as ``py.warnings``) that come from those packages: the warning's file is
  one of theirs, or it was raised while their code was running (pydicom's
  ``warn_and_log(stacklevel=...)`` can point the file at its caller; a warning class of
  theirs is raised from their code). Every other message keeps its quoted values, so an
  administrator still reads which host or database failed (``connection to server at
  "db", port 5432 failed: FATAL: database "lesionloop" does not exist``).

``install()`` runs once per process (``CoreConfig.ready``). It wraps the log record
factory rather than adding a handler filter: a filter only guards the handlers it is
attached to, and gunicorn's and Django's ``django.server`` handlers are not ours.
"""

from __future__ import annotations

import logging
import re
import sys
from types import FrameType
from typing import Any

SCRUBBED = "[scrubbed]"
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&\s\"'#?]{1,100})=[^&\s\"'#]*")
_QUOTED = re.compile(r"""b?'(?:[^'\\\n]|\\.)*'|b?"(?:[^"\\\n]|\\.)*\"""")
_BRACKETED = re.compile(r"\[(?!scrubbed\])[^\]\n]*\]")
DICOM_PACKAGES = ("pydicom", "pynetdicom", "highdicom")
WARNINGS_LOGGER = "py.warnings"
# ``warnings.formatwarning``: "<file>:<line>: <Category>: <message>"
_WARNING_FILE = re.compile(r"(?P<file>[^\n]+?):\d+: \w+: ")
_DICOM_PATH = re.compile(r"[/\\](?:pydicom|pynetdicom|highdicom)[/\\]")


def is_dicom_record(logger_name: str, message: str) -> bool:
    """Whether a record can carry DICOM values, judged from its logger and text alone: a
    logger of the DICOM packages, a message about a VR, or a formatted warning whose file
    lies in one of the packages."""
    if logger_name.split(".", 1)[0] in DICOM_PACKAGES or " for VR " in message:
        return True
    if logger_name == WARNINGS_LOGGER:
        head = _WARNING_FILE.match(message)
        return bool(head and _DICOM_PATH.search(head["file"]))
    return False


def _raised_in_dicom_code(frame: FrameType | None) -> bool:
    """Whether a frame of the DICOM packages is on the stack (a warning being logged now
    was raised while their code ran, whatever file ``stacklevel`` named)."""
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).split(".", 1)[0] in DICOM_PACKAGES:
            return True
        frame = frame.f_back
    return False


def scrub(message: str, *, logger_name: str = "", dicom: bool = False) -> str:
    """``message`` without query-string values, and for records that can carry DICOM
    values (``dicom``, or ``is_dicom_record``) without quoted or bracketed values. Pure:
    the same arguments always give the same result."""
    out = _QUERY_VALUE.sub(rf"\1={SCRUBBED}", message) if "=" in message else message
    if dicom or is_dicom_record(logger_name, message):
        out = _QUOTED.sub(f"'{SCRUBBED}'", out)
        out = _BRACKETED.sub(f"[{SCRUBBED}]", out)
    return out


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report
        return
    # the stack is walked for warnings only: they are rare, and the file alone misses
    # a warning pydicom attributes to its caller
    dicom = record.name == WARNINGS_LOGGER and _raised_in_dicom_code(sys._getframe(1))
    cleaned = scrub(message, logger_name=record.name, dicom=dicom)
    if cleaned != message:
        record.msg, record.args = cleaned, None


def install() -> None:
    """Scrub every record made from now on in this process; route warnings to logging
    (so pydicom's ``warnings.warn`` copies are scrubbed too). Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "lesionloop_scrub", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _scrub_record(record)
        return record

    factory.lesionloop_scrub = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    logging.captureWarnings(True)
