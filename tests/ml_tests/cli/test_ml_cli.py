from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ml.cli import evaluate as evaluate_cli
from ml.cli import predict as predict_cli
from ml.cli import train as train_cli
from tests.ml_tests.ml_core_helpers import make_studies


@pytest.mark.slow
def test_train_predict_evaluate_clis(tmp_path, capsys):
    train = make_studies(tmp_path / "train", 2, seed=0, shape=(10, 18, 18))
    val = make_studies(tmp_path / "val", 1, seed=20, shape=(10, 18, 18))
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "deepmedic": {
                    "batch_size": 2,
                    "segment_dhw": [6, 16, 16],
                    "loss_margin_dhw": [1, 2, 2],
                },
                "unet": {"steps_per_epoch": 1},
            }
        )
    )
    model = tmp_path / "model"
    argv = [
        "--train",
        *map(str, train),
        "--val",
        str(val[0]),
        "--out",
        str(model),
        "--config",
        str(cfg),
    ]
    argv += [
        "--unet-epochs",
        "1",
        "--deepmedic-epochs",
        "1",
        "--deepmedic-segments",
        "2",
        "--loss",
        "dice",
        "--threads",
        "2",
    ]
    assert train_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "unet      epoch 1/1 step 1/1 loss=" in out
        and "deepmedic epoch 1/1" in out
        and "val:" in out
        and "operating point: " in out
        and "validation lesions" in out
    )
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["config"]["unet"]["loss"] == "dice"

    pred_dir = tmp_path / "pred"
    assert (
        predict_cli.main(["--model", str(model), "--study", str(val[0]), "--out", str(pred_dir)])
        == 0
    )
    lesions = json.loads((pred_dir / "lesions.json").read_text())
    assert (
        set(lesions) == {"spacing_mm", "threshold", "lesions"}
        and (pred_dir / "labels.npy").exists()
    )
    assert "lesions in" in capsys.readouterr().out

    report = tmp_path / "eval.json"
    assert (
        evaluate_cli.main(["--model", str(model), "--studies", str(val[0]), "--json", str(report)])
        == 0
    )
    text = capsys.readouterr().out
    assert "ensemble" in text and "DSC" in text
    assert set(json.loads(report.read_text())["summary"]) == {"unet", "deepmedic", "ensemble"}
    assert (
        evaluate_cli.main(
            [
                "--pred",
                str(pred_dir / "labels.npy"),
                "--gt",
                str(val[0] / "ground_truth.npy"),
                "--spacing",
                "4",
                "3",
                "3",
            ]
        )
        == 0
    )
    assert '"dsc"' in capsys.readouterr().out


def test_cli_help_and_bad_arguments(capsys):
    for module in (train_cli, predict_cli, evaluate_cli):
        with pytest.raises(SystemExit) as exc:
            module.main(["--help"])
        assert exc.value.code == 0
    with pytest.raises(SystemExit):
        evaluate_cli.main([])


def test_ml_core_imports_no_web_framework():
    code = (
        "import sys, ml.lesions, ml.losses, ml.networks, ml.metrics, ml.training, ml.inference, "
        "ml.cli.train, ml.cli.predict, ml.cli.evaluate, ml.cli.experiment\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'django', 'rest_framework', 'dramatiq'}]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
