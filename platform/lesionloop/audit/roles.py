"""The two PostgreSQL roles of a deployment (docs/SECURITY.md).

- the **owner** owns the schema and runs migrations (``DATABASE_OWNER_URL``);
- the **app** role is what web and workers connect as (``DATABASE_URL``): it reads and
  writes the application's tables, but on the audit trail it may only INSERT and
  SELECT. It owns nothing, so it cannot ``ALTER TABLE ... DISABLE TRIGGER``, drop the
  append-only triggers, or TRUNCATE (a privilege it is never granted).

``app_role_sql`` gives the statements (idempotent; run them as a superuser, or a role
with CREATEROLE that can grant on the owner's tables, after the first ``migrate``).
Default privileges make the tables of later migrations writable by the app role too.
"""

from __future__ import annotations

import re

from .models import AuditEvent

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}")


def quote_ident(name: str, *, what: str) -> str:
    """A role, database or schema name as a quoted identifier; refuses anything but
    letters, digits, ``_``, ``$`` and ``-`` (no quotes or spaces to play games with in
    printed SQL)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{what} {name!r}: use letters, digits, _, $ and - (at most 63 characters, "
            "not starting with a digit)"
        )
    return f'"{name}"'


def audit_table() -> str:
    return AuditEvent._meta.db_table


def app_role_sql(
    *, app_role: str, owner_role: str, database: str, schema: str = "public"
) -> list[str]:
    """The statements that create (if missing) and confine the app role."""
    app = quote_ident(app_role, what="app role")
    owner = quote_ident(owner_role, what="owner role")
    db = quote_ident(database, what="database")
    sch = quote_ident(schema, what="schema")
    audit = quote_ident(audit_table(), what="audit table")
    if app_role == owner_role:
        raise ValueError("the app role must not be the owner role")
    return [
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
        f"'{app_role}') THEN CREATE ROLE {app} LOGIN; END IF; END $$",
        f"ALTER ROLE {app} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        # membership in the owner would hand it the owner's rights
        f"REVOKE {owner} FROM {app}",
        f"GRANT CONNECT ON DATABASE {db} TO {app}",
        f"GRANT USAGE ON SCHEMA {sch} TO {app}",
        f"REVOKE CREATE ON SCHEMA {sch} FROM PUBLIC",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {sch} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {app}",
        # the audit trail: append and read, nothing else
        f"REVOKE ALL ON TABLE {sch}.{audit} FROM {app}",
        f"REVOKE ALL ON TABLE {sch}.{audit} FROM PUBLIC",
        f"GRANT SELECT, INSERT ON TABLE {sch}.{audit} TO {app}",
        # tables and sequences that later migrations create (as the owner)
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {sch} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {sch} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
