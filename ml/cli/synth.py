"""CLI: generate synthetic CT + contrast T1 MR studies as DICOM.

python -m ml.cli.synth var/synthetic --seeds 0-4 --grid tiny [--prepare var/prepared]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` or ``"1,5,7"`` (or both, comma-separated) as a list of ints."""
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ml.cli.synth", description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path, help="one sub-folder per case is written here")
    p.add_argument("--seeds", default="0", help="e.g. 0-9 or 1,5,7 (default 0)")
    p.add_argument("--grid", default="lite", choices=["tiny", "lite", "paper"])
    p.add_argument("--n-lesions", type=int, default=None)
    p.add_argument("--mr-orientation", choices=["axial", "sagittal"], default=None)
    p.add_argument("--prepare", type=Path, default=None,
                   help="also write prepared studies (with ground_truth.npy) under this folder")  # fmt: skip
    args = p.parse_args(argv)

    from ml.synthetic import generate_study

    for seed in parse_seeds(args.seeds):
        case = args.out_dir / f"case_{seed:05d}"
        truth = generate_study(case, seed=seed, grid=args.grid, n_lesions=args.n_lesions,
                               mr_orientation=args.mr_orientation)  # fmt: skip
        line: dict[str, object] = {"case": str(case), "seed": seed, "n_lesions": truth["n_lesions"]}
        if args.prepare is not None:
            from ml.imaging.pipeline import prepare_study

            meta = prepare_study(case / "dicom", args.prepare / case.name, grid=args.grid,
                                 ground_truth=case / "ground_truth_ct.nii.gz")  # fmt: skip
            line["prepared"] = str(args.prepare / case.name)
            line["registration_ok"] = meta["registration"]["ok"]
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
