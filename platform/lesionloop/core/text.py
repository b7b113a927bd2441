"""Making untrusted text and JSON storable: the one cleaner for DICOM-derived values.

PostgreSQL refuses a NUL character in ``text`` and in ``jsonb`` strings, psycopg cannot
encode a lone surrogate (``"\\ud800"``, which pydicom produces from undecodable bytes
with ``surrogateescape``) to UTF-8, and ``jsonb`` refuses ``NaN`` and ``Infinity``. A
DICOM header can hold all of them. Everything read from an upload passes through
``clean_text`` (one string) or ``clean_json`` (a report, a ``dicom`` dict) before it
reaches a model field; the failure path uses them too, so it cannot fail on the very
text that made ingest fail.
"""

from __future__ import annotations

import math
import re
from typing import Any

# C0 controls except tab, line feed and carriage return; DEL; C1 controls; lone
# surrogates (U+D800-U+DFFF); non-characters U+FFFE/U+FFFF.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

# Strings inside a JSON report; long messages are kept, a 10 MB tag is not.
JSON_STRING_MAX = 4000
# How deep a cleaned JSON value may nest; deeper parts are replaced by None.
JSON_DEPTH_MAX = 32
# Items per list/dict kept in a cleaned JSON value.
JSON_ITEMS_MAX = 10_000


def clean_text(value: Any, *, max_len: int | None = None) -> str:
    """``value`` as text that any database column accepts.

    Removes NUL and other control characters (tab and newlines stay), lone surrogates
    and non-characters, then cuts to ``max_len`` characters. ``None`` becomes ``""``.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _UNSAFE.sub("", text)
    if max_len is not None and len(text) > max_len:
        text = text[:max_len]
    return text


def clean_json(value: Any, *, max_str: int = JSON_STRING_MAX, _depth: int = 0) -> Any:
    """A copy of ``value`` that ``jsonb`` and strict JSON accept.

    Strings (keys too) go through ``clean_text``; non-finite floats become None; tuples
    become lists; anything else that is not a JSON type becomes its (cleaned) text.
    Nesting beyond ``JSON_DEPTH_MAX`` and items beyond ``JSON_ITEMS_MAX`` are dropped.
    """
    if _depth > JSON_DEPTH_MAX:
        return None
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value, max_len=max_str)
    if isinstance(value, dict):
        items = list(value.items())[:JSON_ITEMS_MAX]
        return {
            clean_text(k, max_len=200): clean_json(v, max_str=max_str, _depth=_depth + 1)
            for k, v in items
        }
    if isinstance(value, (list, tuple)):
        return [clean_json(v, max_str=max_str, _depth=_depth + 1) for v in value[:JSON_ITEMS_MAX]]
    if hasattr(value, "dtype") and hasattr(value, "item"):  # a numpy scalar or 0-d array
        try:
            return clean_json(value.item(), max_str=max_str, _depth=_depth)
        except (TypeError, ValueError):
            pass
    return clean_text(value, max_len=max_str)
