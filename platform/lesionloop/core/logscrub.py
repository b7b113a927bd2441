"""No patient data in logs: every log record is scrubbed when it is made.

Two leaks are closed, whatever logger or handler the record goes to (Django's console,
``django.server`` of runserver, gunicorn's access log, a Dramatiq worker's pipe):

- **query strings**: ``GET /api/studies/?search=DOE^JOHN`` names a patient. Every
  ``key=value`` after a ``?`` or ``&`` keeps its key and loses its value
  (``?search=[scrubbed]``), in request lines and referers alike;
- **DICOM parser messages**: pydicom logs (and warns) the offending value,
  ``Invalid value for VR DA: 'DOE^JOHN'.``: in records of the DICOM libraries, of
  ``py.warnings`` (warnings are routed into logging) and in any message about a VR,
  quoted and bracketed values are replaced.

``install()`` runs once per process (``CoreConfig.ready``). It wraps the log record
factory rather than adding a handler filter: a filter only guards the handlers it is
attached to, and gunicorn's and Django's ``django.server`` handlers are not ours.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SCRUBBED = "[scrubbed]"
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&\s\"'#?]{1,100})=[^&\s\"'#]*")
_QUOTED = re.compile(r"""b?'(?:[^'\\\n]|\\.)*'|b?"(?:[^"\\\n]|\\.)*\"""")
_BRACKETED = re.compile(r"\[(?!scrubbed\])[^\]\n]*\]")
_DICOM_LOGGERS = ("pydicom", "pynetdicom", "highdicom", "py.warnings")


def _is_dicom(logger_name: str, message: str) -> bool:
    root = logger_name.split(".", 1)[0]
    return root in _DICOM_LOGGERS or logger_name.startswith("py.warnings") or " for VR " in message


def scrub(message: str, *, logger_name: str = "") -> str:
    """``message`` without query-string values, and for DICOM messages without quoted or
    bracketed values. Pure: the same text always gives the same result."""
    out = _QUERY_VALUE.sub(rf"\1={SCRUBBED}", message) if "=" in message else message
    if _is_dicom(logger_name, message):
        out = _QUOTED.sub(f"'{SCRUBBED}'", out)
        out = _BRACKETED.sub(f"[{SCRUBBED}]", out)
    return out


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report
        return
    cleaned = scrub(message, logger_name=record.name)
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
