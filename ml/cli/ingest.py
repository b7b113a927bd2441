"""CLI: ingest a DICOM folder or zip into a prepared study and print a JSON report.

    python -m ml.cli.ingest upload.zip var/prepared/case1 --grid lite [--ground-truth gt.nii.gz]
    python -m ml.cli.ingest upload/ --scan-only      # only say what was found and ignored

Exit status 0 on success, 2 when the upload is refused (the report says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ml.cli.ingest", description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="a folder tree or a zip of DICOM files")
    p.add_argument("out_dir", type=Path, nargs="?", help="the prepared-study directory to write")
    p.add_argument("--grid", default="lite", choices=["tiny", "lite", "paper"])
    p.add_argument("--ground-truth", type=Path, default=None, help="NIfTI mask on the CT grid")
    p.add_argument("--scan-only", action="store_true", help="report series, write nothing")
    p.add_argument("--report", type=Path, default=None, help="also write the JSON report here")
    args = p.parse_args(argv)

    from ml.imaging.errors import IngestError

    try:
        if args.scan_only or args.out_dir is None:
            from ml.imaging.dicom_io import ingest

            res = ingest(args.source)
            report = {"ok": True, "dicom": res.dicom, "report": res.report,
                      "ct_size_xyz": list(res.ct.GetSize()), "mr_size_xyz": list(res.mr.GetSize())}  # fmt: skip
        else:
            from ml.imaging.pipeline import prepare_study

            meta = prepare_study(args.source, args.out_dir, grid=args.grid,
                                 ground_truth=args.ground_truth)  # fmt: skip
            report = {"ok": True, "out_dir": str(args.out_dir), "dicom": meta["dicom"],
                      "report": meta["report"], "registration": meta["registration"],
                      "timings_s": meta.get("timings_s")}  # fmt: skip
        status = 0
    except IngestError as exc:
        report = {"ok": False, "error": exc.to_dict()}
        status = 2
    text = json.dumps(report, indent=2)
    if args.report is not None:
        args.report.write_text(text)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
