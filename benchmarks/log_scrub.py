"""Benchmark: the cost of scrubbing patient data from log records (core/logscrub.py).

Times ``logger.info`` of a runserver-style request line with a query string, of a
pydicom-style warning and of a Python warning from Django (``py.warnings``), to a NullHandler, without and then with the scrubbing record
factory. Prints microseconds per record and the difference. No target: the number says
what one log line costs extra.

    python benchmarks/log_scrub.py [--records 100000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from lesionloop.core import logscrub  # noqa: E402 - after the source root is on the path

CASES = {
    "request line": (
        "bench",
        '"%s" %s %s',
        ("GET /api/studies/?search=DOE%5EJOHN HTTP/1.1", 200, 5),
    ),
    "pydicom warning": ("pydicom", "Invalid value for VR DA: %r.", ("DOE^JOHN",)),
    # a Python warning routed into logging: not DICOM, but the stack is walked to know that
    "django warning": (
        "py.warnings",
        "%s",
        (
            "/venv/django/db/backends/postgresql/base.py:9: RuntimeWarning: connection to "
            'server at "db", port 5432 failed: FATAL:  database "lesionloop" does not exist\n',
        ),
    ),
}


def _per_record_us(records: int) -> dict[str, float]:
    out = {}
    for name, (logger_name, msg, args) in CASES.items():
        logger = logging.getLogger(logger_name)
        logger.handlers[:] = [logging.NullHandler()]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        seconds = min(
            timeit.repeat(lambda lg=logger, m=msg, a=args: lg.info(m, *a), number=records, repeat=3)
        )
        out[name] = seconds / records * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    records = parser.parse_args().records
    plain = _per_record_us(records)
    logscrub.install()
    scrubbed = _per_record_us(records)
    for name in CASES:
        print(
            f"{name:16s} plain {plain[name]:6.2f} us  scrubbed {scrubbed[name]:6.2f} us  "
            f"extra {scrubbed[name] - plain[name]:6.2f} us per record"
        )


if __name__ == "__main__":
    main()
