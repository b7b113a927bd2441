#!/usr/bin/env bash
# Back up LesionLoop: the PostgreSQL database (pg_dump, custom format) and the storage folder
# (tar, hard links kept), with a sha256 of every stored file. docs/OPERATIONS.md, "Backup".
#   DATABASE_URL=postgres://... LESIONLOOP_STORAGE=/data/storage scripts/backup.sh /backups
# Writes /backups/lesionloop-<UTC time>/{database.dump, storage.tar, storage.sha256, backup.txt}
# and prints that folder. The database is dumped first, then the storage copied: stored files
# are written once and never changed (new revisions, predictions and models are new files),
# so the copy holds every file the dump refers to, while the platform keeps running.
set -euo pipefail
out_root=${1:?usage: scripts/backup.sh OUT_DIR}
: "${DATABASE_URL:?set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/NAME}"
storage=${LESIONLOOP_STORAGE:?set LESIONLOOP_STORAGE to the storage folder}
case "$DATABASE_URL" in postgres://*|postgresql://*) ;; *)
  echo "backup.sh: DATABASE_URL must be postgres:// (SQLite demo: copy var/ instead)" >&2; exit 2 ;;
esac
[ -d "$storage" ] || { echo "backup.sh: storage $storage is not a folder" >&2; exit 2; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
dest="$out_root/lesionloop-$stamp"
mkdir -p "$dest.partial"
pg_dump --format=custom --compress=6 --file="$dest.partial/database.dump" "$DATABASE_URL"
# Uploads still arriving (incoming/) and health probes are not part of the record.
(cd "$storage" && find . -type f ! -path './incoming/*' ! -name '.healthz-*' -print0 \
   | LC_ALL=C sort -z | xargs -0 -r sha256sum) > "$dest.partial/storage.sha256"
tar -C "$storage" --exclude=./incoming --exclude='./.healthz-*' -cf "$dest.partial/storage.tar" .
{
  echo "created_utc=$stamp"
  echo "files=$(wc -l < "$dest.partial/storage.sha256")"
  echo "database_dump_sha256=$(sha256sum "$dest.partial/database.dump" | cut -d' ' -f1)"
  echo "storage_tar_sha256=$(sha256sum "$dest.partial/storage.tar" | cut -d' ' -f1)"
} > "$dest.partial/backup.txt"
mv "$dest.partial" "$dest"   # a backup folder without .partial is complete
echo "$dest"
