#!/usr/bin/env python3
"""Fetch the pinned cornerstone UMD builds with ``npm pack`` and verify their integrity.

Idempotent: a package whose files are present with a matching stamp is skipped.
Exit codes: 0 ok, 2 npm missing or registry unreachable, 3 integrity mismatch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "frontend_static" / "vendor"
LOCK = VENDOR / "vendor.lock.json"


def sri(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm, path.read_bytes()).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode()}"


def fetch(name: str, spec: dict, work: Path) -> None:
    target = VENDOR / name
    stamp = target / ".integrity"
    if (
        stamp.exists()
        and stamp.read_text().strip() == spec["integrity"]
        and all((target / Path(f).name).exists() for f in spec["files"])
    ):
        print(f"  {name}@{spec['version']}: present")
        return
    if shutil.which("npm") is None:
        sys.exit("fetch_vendor: npm is not installed; install Node.js/npm (apt-get install npm).")
    result = subprocess.run(
        ["npm", "pack", f"{name}@{spec['version']}", "--pack-destination", str(work), "--silent"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        print(result.stderr.strip(), file=sys.stderr)
        print(
            f"fetch_vendor: npm could not fetch {name}@{spec['version']}: is the npm registry "
            "reachable from this machine?",
            file=sys.stderr,
        )
        sys.exit(2)
    tarball = work / result.stdout.strip().splitlines()[-1]
    algorithm = spec["integrity"].split("-", 1)[0]
    actual = sri(tarball, algorithm)
    if actual != spec["integrity"]:
        print(
            f"fetch_vendor: INTEGRITY MISMATCH for {name}@{spec['version']}\n"
            f"  expected {spec['integrity']}\n  got      {actual}\nNothing was copied.",
            file=sys.stderr,
        )
        sys.exit(3)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for rel in spec["files"]:
            member = tar.getmember(f"package/{rel}")
            data = tar.extractfile(member)
            assert data is not None
            (target / Path(rel).name).write_bytes(data.read())
    stamp.write_text(spec["integrity"] + "\n")
    print(f"  {name}@{spec['version']}: fetched, integrity ok")


def main() -> None:
    lock = json.loads(LOCK.read_text())
    print("Viewer libraries:")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in lock["packages"].items():
            fetch(name, spec, Path(tmp))


if __name__ == "__main__":
    main()
