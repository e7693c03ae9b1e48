"""`medgrade pretrain` / `medgrade finetune` through the training runner, as a user runs them: the example
config pre-trains a tiny UMAE on the real BreakHis patient SOB_B_F-14-25197 (four magnifications), the
reconstruction loss falls, a bundle is written; fine-tuning on the 40X images of the BreakHis sample
starts from exactly those encoder weights, trains on patient-level folds and reports a pooled AUC."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from MedGradeCoreLib.bundle import load_state_dict, read_manifest
from MedGradeCoreLib.cli import main

REPO = Path(__file__).resolve().parents[1]


def _history(run: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (run / "splits" / split / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("umae") / "pretrain"
    assert main(["pretrain", "--config", str(REPO / "configs" / "tiny-umae-breakhis.json"), "--output", str(run)]) == 0
    return run


def test_pretrain_config_lowers_loss_and_writes_bundle(pretrained: Path) -> None:
    hist = _history(pretrained, "final")
    assert len(hist) == 20 and hist[-1]["train_loss"] < 0.6 * hist[0]["train_loss"], hist
    manifest = read_manifest(pretrained / "bundle" / "tiny-umae-breakhis")
    assert manifest.kind == "umae-pretrain" and manifest.inputs == ["40x", "100x", "200x", "400x"]
    assert manifest.architecture["name"] == "umae" and manifest.architecture["encoder"]["attention"] == "ccp"
    assert "1 samples of 1 patients" in manifest.trained_on
    assert any((pretrained / "splits" / "final").glob("checkpoints/*")) or (pretrained / "splits" / "final" / "final.pt").is_file()


def test_finetune_starts_from_the_encoder_and_trains(pretrained: Path, tmp_path: Path) -> None:
    from MedGradeTrainLib.kinds.umae import UMAEFinetune

    bundle = pretrained / "bundle" / "tiny-umae-breakhis"
    cfg = json.loads((REPO / "configs" / "tiny-umae-breakhis.json").read_text())
    cfg["kind"] = {"name": "umae-finetune", "module": "MedGradeTrainLib.kinds.umae", "model_id": "tiny-ft",
                   "data": {"source": "breakhis", "root": "sample:breakhis-sample", "magnifications": [40],
                            "view": "40x", "positive": "malignant"}}
    cfg.update(split={"mode": "kfold", "folds": 2}, final_fit=False)
    cfg["train"].update(epochs=2, batch_size=4, checkpoint_every_steps=0, restore_best=False)
    path = tmp_path / "ft.json"
    path.write_text(json.dumps(cfg))
    # the classifier's encoder is the pre-trained one, tensor for tensor
    kind = UMAEFinetune({**cfg["kind"], "pretrained": str(bundle)}, tmp_path / "k")
    assert len(kind.patients()) == 9 and {p.label for p in kind.patients()} == {0, 1}
    model = kind.build_model(None)
    weights = load_state_dict(bundle / "model.safetensors")
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, weights["encoder." + k]), k
    run = tmp_path / "ft"
    assert main(["finetune", "--config", str(path), "--output", str(run), "--pretrained", str(bundle)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["pooled"]["n"] == 9 and summary["pooled"]["auc_ci95"] is not None
    hist = _history(run, "fold0")
    assert len(hist) == 2 and all(math.isfinite(h["train_loss"]) for h in hist)
    # it trained: the fine-tuned encoder moved away from the pre-trained one (it is not frozen or reloaded)
    tuned = load_state_dict(run / "bundle" / "tiny-ft" / "model.safetensors")
    encoder = [k for k in weights if k.startswith("encoder.") and weights[k].is_floating_point()]
    assert encoder and set(encoder) <= set(tuned)
    moved = [k for k in encoder if not torch.equal(tuned[k], weights[k])]
    assert len(moved) >= 0.5 * len(encoder), f"only {len(moved)} of {len(encoder)} encoder tensors changed"
    manifest = read_manifest(run / "bundle" / "tiny-ft")
    assert manifest.kind == "umae-classifier" and manifest.architecture["pretrained_from"] == "tiny-umae-breakhis"
    # a config of another kind is refused with a clear message
    assert main(["finetune", "--config", str(REPO / "configs" / "tiny-umae-breakhis.json"),
                 "--output", str(tmp_path / "x")]) == 2
