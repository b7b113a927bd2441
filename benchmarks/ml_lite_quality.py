"""The ``lite`` quality target: train the ensemble on CPU for at most 10 minutes on
about 10 synthetic studies, then count held-out lesions of >= 100 mm3 found and
false-positive lesions per study.

python benchmarks/ml_lite_quality.py [--data var/prepared_lite] [--train 100-109]
    [--val 110,111,130,131] [--test 112-129] [--minutes 10] [--seed 0] [--work var/lite_quality]
    [--threads 2] [--eval-only]

Missing studies are generated first (``ml.synthetic.generate_study`` +
``ml.imaging.pipeline.prepare_study``, about 12 s each; not counted in the
training time). Training is ``ml.training.train_ensemble`` with
``EnsembleTrainConfig.for_grid("lite")`` and ``max_minutes``; its wall time
includes every validation pass and the operating-point calibration. The
held-out studies are then run through ``EnsemblePredictor.from_dir`` exactly as
the platform runs them; each network alone and the plain mean at 0.5 are
printed beside the model's own rule for comparison. Per-study probability maps
are kept in ``<work>/maps`` (float16) for offline analysis.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.cli.synth import parse_seeds  # noqa: E402
from ml.inference import EnsemblePredictor  # noqa: E402
from ml.metrics import aggregate, detection_summary, evaluate_case  # noqa: E402
from ml.training import EnsembleTrainConfig, train_ensemble  # noqa: E402
from ml.training.data import read_spacing  # noqa: E402

TARGET_MIN_MM3 = 100.0
TARGET_DETECTION = 0.9
TARGET_FP_PER_STUDY = 1.0


def ensure_studies(data: Path, synth: Path, seeds: list[int]) -> list[Path]:
    dirs = []
    for seed in seeds:
        name = f"case_{seed:05d}"
        prepared = data / name
        if not (prepared / "ground_truth.npy").exists():
            # Imported only when needed: the imaging stack (SimpleITK) is not required
            # to train and evaluate on studies prepared elsewhere (e.g. on a GPU machine).
            from ml.imaging.pipeline import prepare_study
            from ml.synthetic import generate_study

            t0 = time.monotonic()
            generate_study(synth / name, seed=seed, grid="lite")
            prepare_study(
                synth / name / "dicom",
                prepared,
                grid="lite",
                ground_truth=synth / name / "ground_truth_ct.nii.gz",
            )
            print(f"generated {name} in {time.monotonic() - t0:.0f} s", flush=True)
        dirs.append(prepared)
    return dirs


def _progress(event: dict) -> None:
    if event["stage"] == "validate":
        v = event["val"]
        print(
            f"  {event['net']:9s} epoch {event['epoch']:3d} loss {event['loss']:+.4f} "
            f"val DSC {v['dsc'] if v['dsc'] is None else round(v['dsc'], 3)} "
            f"detection {v['detection_rate']} FP/case {v['fp_lesions_per_case']}",
            flush=True,
        )
    elif event["stage"] == "calibrate":
        print(f"  calibrate: {event['message']}", flush=True)


def _verdict(t: dict) -> str:
    ok = (t["detection_rate"] or 0) >= TARGET_DETECTION and (
        t["fp_lesions_per_study"] or 0
    ) <= TARGET_FP_PER_STUDY
    return "MET" if ok else "not met"


# long: linear benchmark script (train ~10 min, infer held-out studies, print the table)
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("var/prepared_lite"))
    p.add_argument("--synth", type=Path, default=Path("var/synth_lite"))
    p.add_argument("--train", default="100-109")
    p.add_argument("--val", default="110,111,130,131")
    p.add_argument("--test", default="112-129")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("var/lite_quality"))
    p.add_argument("--config", default=None, help="JSON overrides of the lite config")
    p.add_argument("--eval-only", action="store_true", help="evaluate the model in --work")
    p.add_argument("--device", default="cpu", help="inference device for the held-out studies")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    train = ensure_studies(args.data, args.synth, parse_seeds(args.train))
    val = ensure_studies(args.data, args.synth, parse_seeds(args.val))
    test = ensure_studies(args.data, args.synth, parse_seeds(args.test))
    model_dir = args.work / "model"

    if not args.eval_only:
        config = EnsembleTrainConfig.for_grid("lite", seed=args.seed, max_minutes=args.minutes)
        if args.config:
            merged = config.to_dict()
            for key, value in json.loads(args.config).items():
                if isinstance(value, dict):
                    merged[key].update(value)
                else:
                    merged[key] = value
            config = EnsembleTrainConfig.from_dict(merged)
        print(f"training {len(train)} studies, validating on {len(val)}, budget {args.minutes} min")
        cpu0, t0 = time.process_time(), time.monotonic()
        manifest = train_ensemble(
            config, train_dirs=train, val_dirs=val, out_dir=model_dir, progress=_progress
        )
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        for arch in ("unet", "deepmedic"):
            f = manifest["files"][arch]
            print(f"  {arch}: {f['epochs_run']} epochs, best {f['epoch']}, stopped {f['stopped']}")
        print(f"training wall time {wall / 60:.2f} min, CPU time {cpu / 60:.2f} min "
              f"({args.threads} threads)")  # fmt: skip

    predictor = EnsemblePredictor.from_dir(model_dir, device=args.device)
    maps = args.work / "maps"
    maps.mkdir(parents=True, exist_ok=True)
    names = ("unet", "deepmedic", "mean@0.5", "model")
    results: dict[str, list[dict]] = {n: [] for n in names}
    infer_s = []
    for study in test:
        image = np.load(study / "model_input.npy")
        gt = np.load(study / "ground_truth.npy")
        spacing = read_spacing(study)
        t = time.monotonic()
        pred = predictor.predict(image, spacing)
        infer_s.append(time.monotonic() - t)
        np.savez_compressed(
            maps / f"{study.name}.npz",
            unet=pred.unet_prob.astype(np.float16),
            deepmedic=pred.deepmedic_prob.astype(np.float16),
        )
        masks = {
            "unet": pred.unet_prob >= 0.5,
            "deepmedic": pred.deepmedic_prob >= 0.5,
            "mean@0.5": (pred.unet_prob + pred.deepmedic_prob) / 2 >= 0.5,
            "model": pred.labels > 0,
        }
        for n in names:
            r = evaluate_case(masks[n], gt, spacing)
            r["case_id"] = study.name
            results[n].append(r)
        t100 = detection_summary([results["model"][-1]], TARGET_MIN_MM3)
        print(
            f"  {study.name}: {t100['n_detected']}/{t100['n_lesions']} lesions >= 100 mm3 found, "
            f"{results['model'][-1]['fp_lesions_any_overlap']} FP lesions, "
            f"{len(pred.lesions)} candidates, {infer_s[-1]:.1f} s",
            flush=True,
        )
    rule = predictor.rule_description()
    print(f"\nheld-out: {len(test)} studies; model rule: {rule}")
    print(f"{'rule':10s} {'DSC':>6s} {'found >=100 mm3':>16s} {'FP/study':>9s}  target")
    summary = {}
    for n in names:
        agg = aggregate(results[n])
        t100 = detection_summary(results[n], TARGET_MIN_MM3)
        summary[n] = {"dsc": agg["dsc"], "target": t100}
        print(
            f"{n:10s} {agg['dsc'] or 0:6.3f} {t100['n_detected']:>7d}/{t100['n_lesions']:<3d} "
            f"({t100['detection_rate'] or 0:.2f}) {t100['fp_lesions_per_study'] or 0:9.2f}  {_verdict(t100)}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"inference {np.median(infer_s):.1f} s median per study; peak RSS {peak:.0f} MiB")
    (args.work / "results.json").write_text(
        json.dumps({"rule": rule, "summary": summary, "cases": results}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
