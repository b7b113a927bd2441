"""The two PostgreSQL roles of a deployment (docs/SECURITY.md).

- the **owner** owns the schema and runs migrations (``DATABASE_OWNER_URL``);
- the **app** role is what web and workers connect as (``DATABASE_URL``): it reads and
  writes the application's tables, but on the audit trail it may only INSERT and
  SELECT. It owns nothing, so it cannot ``ALTER TABLE ... DISABLE TRIGGER``, drop the
  append-only triggers, or TRUNCATE (a privilege it is never granted).

``app_role_sql`` gives the statements (idempotent; run them as a superuser, or a role
with CREATEROLE that can grant on the owner's tables, after the first ``migrate``).
Default privileges make the tables of later migrations writable by the app role too.
With ``grants_only`` it leaves out the role's creation and attributes, which need a
superuser (compose: ``docker/postgres/init-roles.sh``): the rest the owner may run itself,
after ``app_role_problems`` has found the role as confined as it must be.
"""

from __future__ import annotations

import re
from typing import Any

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
    *,
    app_role: str,
    owner_role: str,
    database: str,
    schema: str = "public",
    grants_only: bool = False,
) -> list[str]:
    """The statements that create (if missing) and confine the app role; with
    ``grants_only`` only its privileges (the owner can grant them without CREATEROLE)."""
    app = quote_ident(app_role, what="app role")
    owner = quote_ident(owner_role, what="owner role")
    db = quote_ident(database, what="database")
    sch = quote_ident(schema, what="schema")
    audit = quote_ident(audit_table(), what="audit table")
    if app_role == owner_role:
        raise ValueError("the app role must not be the owner role")
    role = [
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
        f"'{app_role}') THEN CREATE ROLE {app} LOGIN; END IF; END $$",
        f"ALTER ROLE {app} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        # membership in the owner would hand it the owner's rights
        f"REVOKE {owner} FROM {app}",
    ]
    grants = [
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
    return grants if grants_only else role + grants


# What an app role must not have, as a query on pg_roles (one row: the role's flags).
_ROLE_FLAGS = (
    "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
    "pg_has_role(rolname, %s, 'MEMBER') FROM pg_roles WHERE rolname = %s"
)
_FLAG_NAMES = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")


def app_role_problems(cursor: Any, *, app_role: str, owner_role: str) -> list[str]:
    """Why ``app_role`` is not confined (empty when it is): missing, a superuser, one of
    CREATEROLE / CREATEDB / REPLICATION / BYPASSRLS, or a member of the owner role (which
    would hand it the owner's rights). Reads ``pg_roles`` only: any role may run it."""
    cursor.execute(_ROLE_FLAGS, [owner_role, app_role])
    row = cursor.fetchone()
    if row is None:
        return [f"role {app_role!r} does not exist"]
    flags = zip(_FLAG_NAMES, row[: len(_FLAG_NAMES)], strict=True)
    problems = [f"{app_role!r} has {name}" for name, flag in flags if flag]
    if row[-1]:
        problems.append(f"{app_role!r} is a member of the owner role {owner_role!r}")
    return problems
