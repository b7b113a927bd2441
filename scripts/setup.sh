#!/usr/bin/env bash
# Idempotent set-up shared by run.sh and test.sh: virtual environment, pinned install,
# viewer libraries. Fast the second time (a stamp of requirements.txt skips pip).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "LesionLoop needs Python 3.11; $PY is $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $PY ..."
  "$PY" -m venv .venv
fi
want=$(cat requirements.txt requirements-eval.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null || true)" != "$want" ]; then
  echo "Installing pinned requirements (torch==2.13.0 CPU wheel from the local disk) ..."
  # pip warns once per package about this machine's optional local indexes; hide only that.
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  # panoptica (lesion-wise metrics, for the agreement tests) pins an older numpy and cc3d
  # than ours while working with them: installed without its resolver (requirements-eval.txt).
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-eval.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  echo "$want" > .venv/.requirements.sha256
fi
.venv/bin/python scripts/fetch_vendor.py
