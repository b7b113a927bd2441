"""A stand-in for ``lesionloop.training.runner`` (no torch): behaviour from FAKE_RUNNER_MODE.

ok       emits progress, writes weights + manifest, emits done
crash    writes a partial weights file, then exits 1
hang     emits one progress event, then sleeps (for cancel and timeout tests)
badhash  like ok, but the manifest's sha256 is wrong
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    mode = os.environ.get("FAKE_RUNNER_MODE", "ok")
    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    Path(os.environ.get("FAKE_RUNNER_SPEC_COPY", "/dev/null")).write_text(json.dumps(spec))
    for stage in ("unet", "deepmedic"):
        for epoch in (1, 2):
            for step in (1, 2):
                emit(
                    {
                        "type": "progress",
                        "stage": stage,
                        "epoch": epoch,
                        "epochs": 2,
                        "step": step,
                        "steps": 2,
                        "loss": 1.0 / (epoch + step),
                        "val": None,
                    }
                )
            emit(
                {
                    "type": "progress",
                    "stage": "validate",
                    "net": stage,
                    "epoch": epoch,
                    "epochs": 2,
                    "step": 2,
                    "steps": 2,
                    "loss": 0.5 / epoch,
                    "val": {"dsc": 0.4},
                }
            )
            if mode == "hang":
                time.sleep(120)
    if mode == "crash":
        (out / "unet.pt").write_bytes(b"half")
        print("boom: simulated crash", file=sys.stderr)
        return 1
    files = {}
    for arch in ("unet", "deepmedic"):
        data = f"{arch}-weights-{spec['config']['seed']}".encode()
        (out / f"{arch}.pt").write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        files[arch] = {"path": f"{arch}.pt", "sha256": "0" * 64 if mode == "badhash" else sha}
    (out / "unet.last.pt").write_bytes(b"scratch")
    manifest = {
        "files": files,
        "preset": spec["config"]["preset"],
        "seed": spec["config"]["seed"],
        "config": spec["config"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    emit({"type": "stage", "stage": "evaluate"})
    metrics = json.loads(
        os.environ.get("FAKE_RUNNER_METRICS", '{"dsc": 0.7, "small_sensitivity": 0.6}')
    )
    baseline = json.loads(os.environ.get("FAKE_RUNNER_BASELINE", "null"))
    emit(
        {
            "type": "done",
            "manifest": manifest,
            "metrics": metrics,
            "baseline_metrics": baseline if spec.get("baseline_dir") else None,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
