"""Run a block as the database's owner role (``DATABASE_OWNER_URL``, docs/SECURITY.md).

The application connects as a confined role; schema changes (``migrate``) and grants
(``db_roles --apply``) need the owner. This swaps the credentials of the ``default``
connection for the block and puts them back after, closing the connection both times.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dj_database_url
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

_CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


@contextmanager
def owner_connection(alias: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    """Yields True when the block runs as the owner, False when no owner URL is set
    (the embedded SQLite mode, or a single-role deployment): then nothing changes."""
    url = getattr(settings, "DATABASE_OWNER_URL", "")
    if not url or alias != DEFAULT_DB_ALIAS:
        yield False
        return
    owner = dj_database_url.parse(url)
    connection = connections[alias]
    saved = {key: connection.settings_dict.get(key) for key in _CREDENTIALS}
    connection.close()
    connection.settings_dict.update({key: owner.get(key) for key in _CREDENTIALS})
    try:
        yield True
    finally:
        connection.close()
        connection.settings_dict.update(saved)
