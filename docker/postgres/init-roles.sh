#!/usr/bin/env bash
# The two database roles of a LesionLoop deployment (docs/SECURITY.md), made by the
# PostgreSQL superuser. The postgres image runs this once, from /docker-entrypoint-initdb.d/,
# when the `pgdata` volume is first initialised (POSTGRES_USER is then the superuser and
# POSTGRES_DB the database); run it again to change a password or to convert an older volume:
#   docker compose -f docker/compose.yml --env-file docker/.env exec db \
#     /docker-entrypoint-initdb.d/init-roles.sh
#
# - owner (LESIONLOOP_OWNER_ROLE, default lesionloop): LOGIN, not a superuser, no CREATEROLE;
#   owns the database and its public schema, so `manage.py migrate` creates every table as it;
# - app (LESIONLOOP_APP_ROLE, default lesionloop_app): LOGIN and nothing else; may CONNECT.
#   Its table privileges (INSERT and SELECT only on the audit trail) are granted by the owner
#   after each migration: `manage.py db_roles --grants-only --apply` (the `migrate` service).
# Idempotent. Passwords are read from the environment inside psql (\getenv), so they appear
# on no command line and in no output.
set -eo pipefail

if [ -z "${LESIONLOOP_OWNER_PASSWORD:-}" ] || [ -z "${LESIONLOOP_APP_PASSWORD:-}" ]; then
    echo "init-roles.sh: set LESIONLOOP_OWNER_PASSWORD and LESIONLOOP_APP_PASSWORD" >&2
    exit 1
fi
export LESIONLOOP_OWNER_ROLE="${LESIONLOOP_OWNER_ROLE:-lesionloop}"
export LESIONLOOP_APP_ROLE="${LESIONLOOP_APP_ROLE:-lesionloop_app}"
if [ "$LESIONLOOP_OWNER_ROLE" = "$LESIONLOOP_APP_ROLE" ]; then
    echo "init-roles.sh: the owner and app roles must differ" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" <<'EOSQL'
\getenv owner LESIONLOOP_OWNER_ROLE
\getenv app LESIONLOOP_APP_ROLE
\getenv owner_password LESIONLOOP_OWNER_PASSWORD
\getenv app_password LESIONLOOP_APP_PASSWORD
SELECT current_database() AS db \gset
BEGIN;
SELECT format('CREATE ROLE %I', :'owner')
    WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I', :'app')
    WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
ALTER ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_password';
-- membership in the owner would hand the app role the owner's rights
SELECT format('REVOKE %I FROM %I', :'owner', :'app')
    WHERE pg_has_role(:'app', :'owner', 'MEMBER') \gexec
ALTER DATABASE :"db" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- only the two roles (and the superuser) may connect
REVOKE CONNECT, TEMPORARY ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"app";
COMMIT;
SELECT format('init-roles.sh: database %s owned by %s; app role %s', :'db', :'owner', :'app') AS done \gset
\echo :done
EOSQL
