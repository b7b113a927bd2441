#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database and an EMPTY storage folder,
# then check every file against its sha256. docs/OPERATIONS.md, "Restore".
#   DATABASE_URL=postgres://.../new_db LESIONLOOP_STORAGE=/data/storage scripts/restore.sh BACKUP
# Run it as the database owner (the role migrations run as); the platform must be stopped.
# Refuses a database that has tables or a storage folder that has files: never merges.
set -euo pipefail
backup=${1:?usage: scripts/restore.sh BACKUP_DIR}
: "${DATABASE_URL:?set DATABASE_URL to the (empty) target database}"
storage=${LESIONLOOP_STORAGE:?set LESIONLOOP_STORAGE to the (empty) target storage folder}
backup_abs=$(cd "$backup" && pwd)
for f in database.dump storage.tar storage.sha256 backup.txt; do
  [ -f "$backup/$f" ] || { echo "restore.sh: $backup/$f is missing (incomplete backup?)" >&2; exit 2; }
done
want_dump=$(sed -n 's/^database_dump_sha256=//p' "$backup/backup.txt")
want_tar=$(sed -n 's/^storage_tar_sha256=//p' "$backup/backup.txt")
[ "$(sha256sum "$backup/database.dump" | cut -d' ' -f1)" = "$want_dump" ] \
  || { echo "restore.sh: database.dump does not match its sha256 in backup.txt" >&2; exit 3; }
[ "$(sha256sum "$backup/storage.tar" | cut -d' ' -f1)" = "$want_tar" ] \
  || { echo "restore.sh: storage.tar does not match its sha256 in backup.txt" >&2; exit 3; }

tables=$(psql "$DATABASE_URL" -Atc \
  "select count(*) from pg_tables where schemaname not in ('pg_catalog','information_schema')")
[ "$tables" = 0 ] || { echo "restore.sh: the target database has $tables tables; use an empty one" >&2; exit 4; }
mkdir -p "$storage"
[ -z "$(ls -A "$storage")" ] || { echo "restore.sh: $storage is not empty" >&2; exit 4; }

# --no-owner: the restoring role (the owner) owns everything; grants to other roles are kept.
pg_restore --exit-on-error --single-transaction --no-owner --dbname="$DATABASE_URL" "$backup/database.dump"
tar -C "$storage" -xf "$backup/storage.tar"
(cd "$storage" && sha256sum --quiet --strict -c "$backup_abs/storage.sha256") \
  || { echo "restore.sh: files in $storage do not match storage.sha256" >&2; exit 5; }
echo "restored $(wc -l < "$backup/storage.sha256") files (sha256 checked) and the database into $storage"
