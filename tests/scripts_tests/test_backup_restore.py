"""scripts/backup.sh and scripts/restore.sh on real PostgreSQL and a real storage folder.

Builds a study with two mask revisions (the model's and a clinician's save through the API),
model versions with weight files and the audit events all that wrote; backs up; restores
into a new empty database and an empty folder; then every table's rows (count and an md5
of their text), every sequence and every file's sha256 must match the original.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from tests.platform_tests.studies.helpers import (
    DEFAULT_BOXES,
    labels_with_boxes,
    make_study,
    model_version,
    put_mask,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _url(name: str | None = None) -> str:
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return (
        f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name or db['NAME']}"
    )


def _snapshot(url: str) -> dict[str, Any]:
    """Every table's row count and md5 of its rows' text; every sequence's last value."""
    out: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "select tablename from pg_tables where schemaname = 'public' order by 1"
        ).fetchall()
        for (table,) in tables:
            out[table] = conn.execute(
                f"select count(*), md5(coalesce(string_agg(t::text, chr(10) order by t::text), '')) from \"{table}\" t"
            ).fetchone()
        for (seq,) in conn.execute(
            "select sequencename from pg_sequences where schemaname = 'public'"
        ):
            out[f"seq:{seq}"] = conn.execute(f'select last_value from "{seq}"').fetchone()
    return out


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def restore_db() -> Any:
    from django.db import connection

    name = f"{connection.settings_dict['NAME']}_restore"
    with psycopg.connect(_url("postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}"')
        conn.execute(f'create database "{name}"')
    yield name
    with psycopg.connect(_url("postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def _build_data(api: Any, cast: Any, storage: Path) -> Any:
    study = make_study(patient_label="BACKUP-1")
    client = api(cast.clinician)
    labels = labels_with_boxes(DEFAULT_BOXES)
    labels[6:8, 28:31, 28:31] = 4  # a drawn lesion: revision 2
    response = put_mask(client, study.pk, labels, revision=1, reason="drew one")
    assert response.status_code == 200, response.content
    version = model_version("v7", "active", weights_dir="models/v7")
    (storage / "models" / "v7").mkdir(parents=True)
    for name in ("unet.pt", "deepmedic.pt", "manifest.json"):
        (storage / "models" / "v7" / name).write_bytes(np.random.default_rng(7).bytes(4096))
    return study, version


def test_backup_then_restore_into_empty_database_and_storage(
    api: Any, cast: Any, settings: Any, tmp_path: Path, restore_db: str
) -> None:
    from lesionloop.audit.models import AuditEvent
    from lesionloop.registry.models import ModelVersion
    from lesionloop.review.models import MaskRevision

    storage = tmp_path / "storage"
    storage.mkdir()
    settings.STORAGE_ROOT = storage
    study, version = _build_data(api, cast, storage)
    assert study.revisions.count() == 2 and MaskRevision.objects.count() == 2
    assert ModelVersion.objects.count() == 2 and AuditEvent.objects.count() >= 3
    before_db, before_files = _snapshot(_url()), _files(storage)
    assert any(name.startswith("studies/") and "revisions/" in name for name in before_files)

    backups = tmp_path / "backups"
    made = _run(
        "backup.sh", str(backups), env={"DATABASE_URL": _url(), "LESIONLOOP_STORAGE": str(storage)}
    )
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip().splitlines()[-1])
    assert backup.is_dir() and not list(backups.glob("*.partial"))

    target = tmp_path / "restored"
    env = {"DATABASE_URL": _url(restore_db), "LESIONLOOP_STORAGE": str(target)}
    restored = _run("restore.sh", str(backup), env=env)
    assert restored.returncode == 0, restored.stderr
    after_db = _snapshot(_url(restore_db))
    for table in (
        "studies_study",
        "review_maskrevision",
        "registry_modelversion",
        "audit_auditevent",
    ):
        assert after_db[table][0] > 0, table
    assert after_db == before_db
    assert _files(target) == before_files

    # Never merges: a second restore into the now non-empty targets is refused.
    again = _run("restore.sh", str(backup), env=env)
    assert again.returncode == 4 and "tables" in again.stderr


@pytest.mark.parametrize(
    ("damage", "code", "message"),
    [
        ("storage.tar", 3, "storage.tar does not match"),
        ("database.dump", 3, "database.dump does not match"),
        ("backup.txt", 2, "backup.txt is missing"),
    ],
)
def test_restore_refuses_a_damaged_backup(
    cast: Any, settings: Any, tmp_path: Path, restore_db: str, damage: str, code: int, message: str
) -> None:
    storage = tmp_path / "storage"
    (storage / "studies").mkdir(parents=True)
    (storage / "studies" / "a.bin").write_bytes(b"abc")
    made = _run(
        "backup.sh",
        str(tmp_path / "b"),
        env={"DATABASE_URL": _url(), "LESIONLOOP_STORAGE": str(storage)},
    )
    backup = Path(made.stdout.strip())
    if damage == "backup.txt":
        (backup / damage).unlink()
    else:
        with open(backup / damage, "ab") as fh:
            fh.write(b"x")
    env = {"DATABASE_URL": _url(restore_db), "LESIONLOOP_STORAGE": str(tmp_path / "restored")}
    result = _run("restore.sh", str(backup), env=env)
    assert result.returncode == code and message in result.stderr, result.stderr
    assert not (tmp_path / "restored").exists() or not any((tmp_path / "restored").iterdir())
