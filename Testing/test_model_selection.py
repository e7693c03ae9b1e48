"""Model selection and the augmented location prior (issue 17).

- a trained run keeps its best-validation checkpoint: validation that worsens after epoch 1 ships epoch 1;
- three-part splits (train / inner validation / test per fold): the test patients reach the kind, never the
  training or the selection, and a patient in two parts is refused;
- MIG-Net's FPG location prior and weight map go through the same spatial augmentation as the image, and at
  inference the stored prior lies on the grid of the slice.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from MedGradeTrainLib.kinds.toy import ToyRegression
from MedGradeTrainLib.runner import checkpoint as ckpt
from MedGradeTrainLib.runner.splits import SplitLeakError, read_split_file


class _WorsensAfterEpoch1(ToyRegression):
    """Validation gets worse on every epoch after the first (whatever the weights do)."""

    calls = 0

    def validate(self, model, split, device):
        type(self).calls += 1
        return {"val_mae": float(type(self).calls), "val_loss": 0.0}


def _toy_cfg(epochs: int = 4) -> dict:
    return {"kind": {"name": "toy-regression", "size": 16, "width": 2}, "seed": 0, "final_fit": False,
            "register": False, "split": {"mode": "holdout", "val_fraction": 0.3},
            "train": {"epochs": epochs, "batch_size": 4, "device": "cpu", "amp": False, "channels_last": False,
                      "optimizer": {"name": "AdamW", "lr": 5e-2}, "restore_best": True}}


def test_validation_worsening_after_epoch_1_ships_epoch_1(tmp_path):
    from MedGradeTrainLib.runner.loop import run_training

    run = tmp_path / "run"
    _WorsensAfterEpoch1.calls = 0
    kind = _WorsensAfterEpoch1(_toy_cfg()["kind"], run)
    res = run_training(_toy_cfg(), run, kind=kind, stdout=None)
    split = res.summary["splits"][0]
    assert split["epochs_run"] == 4 and split["best_epoch"] == 1
    best = ckpt.load_verified(run / "splits" / "holdout" / "best.pt")
    assert best["epoch"] == 1
    shipped = res.model.state_dict()
    for k, v in best["model"].items():
        assert torch.equal(shipped[k].cpu(), v.cpu()), k  # the returned (and bundled) model is epoch 1's
    last = ckpt.latest_valid(run / "splits" / "holdout" / "checkpoints")
    assert any(not torch.equal(last["model"][k], best["model"][k]) for k in best["model"])  # it trained on
    bundled = ckpt.load_verified(run / "splits" / "holdout" / "final.pt")["model"]
    assert all(torch.equal(bundled[k], best["model"][k]) for k in best["model"])


class _SeesTest(ToyRegression):
    seen: dict = {}

    def finish_split(self, model, split, device):
        type(self).seen[split.name] = {"train": list(split.train_patients), "val": list(split.val_patients),
                                       "test": list(split.test_patients)}
        return {}


def test_three_part_split_gives_test_patients_to_the_kind_only(tmp_path):
    from MedGradeTrainLib.runner.loop import run_training

    ids = [f"slice{i:02d}" for i in range(25)]
    split = {"splits": [{"name": "fold0", "train": ids[:15], "val": ids[15:20], "test": ids[20:]}]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    cfg = _toy_cfg(1)
    cfg["split"] = {"mode": "kfold", "folds": 2, "file": str(tmp_path / "split.json")}
    _SeesTest.seen = {}
    kind = _SeesTest(cfg["kind"], tmp_path / "run")
    res = run_training(cfg, tmp_path / "run", kind=kind, stdout=None)
    assert _SeesTest.seen["fold0"] == {"train": ids[:15], "val": ids[15:20], "test": ids[20:]}
    record = json.loads((tmp_path / "run" / "splits" / "fold0" / "result.json").read_text())
    assert record["test_patients"] == ids[20:] and res.summary["splits"][0]["best_epoch"] == 1
    bad = {"splits": [{"name": "fold0", "train": ids[:15], "val": ids[15:20], "test": ids[14:]}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(SplitLeakError, match="slice14"):
        read_split_file(tmp_path / "bad.json")


def test_prior_and_weight_follow_the_image_augmentation():
    from MedGradeSegmentLib.segmentation.data import train_transforms

    rng = np.random.default_rng(0)
    img = rng.random((1, 40, 40)).astype(np.float32)
    t = train_transforms(pad=48, crop=32, noise_std=0.0)
    for seed in range(8):
        t.set_random_state(seed)
        out = t({"image": img, "label": (img > 0.5).astype(np.float32), "weight": img.copy(), "prior": img.copy()})
        assert torch.equal(out["prior"], out["image"]) and torch.equal(out["weight"], out["image"])
        assert torch.equal(out["label"], (out["image"] > 0.5).float())
    out = t({"image": img, "label": img, "weight": img})  # models without a prior input: no key needed
    assert "prior" not in out


def test_mignet_prior_input_same_grid_at_inference():
    from MedGradeSegmentLib.segmentation.mignet import MIGNet, MIGNetConfig

    torch.manual_seed(0)
    prior = torch.zeros(64, 64)
    prior[10:30, 30:50] = 1.0
    cfg = MIGNetConfig(embed_dim=6, num_heads=(1, 1, 2, 2), window_size=2, prior_size=64, prior_input=True)
    net = MIGNet(cfg, prior).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        a, _ = net(x)  # inference: the stored prior, on the slice's own grid
        b, _ = net(x, prior.expand(2, 1, 64, 64))  # training: the augmented prior given with the image
        alpha = net.location_alpha(x, None)
    assert torch.allclose(a, b, atol=1e-6)
    # the trainable part starts as the identity on the area-averaged atlas (eq. 3-3's initialisation)
    expect = torch.nn.functional.interpolate(prior[None, None], size=(2, 2), mode="area")
    assert torch.allclose(alpha, expect.expand(2, 1, 2, 2), atol=1e-6)
    # a rotated prior gives a rotated alpha (it moves with the image)
    rot = torch.rot90(prior, 1, (0, 1))
    with torch.no_grad():
        alpha_r = net.location_alpha(x, rot.expand(2, 1, 64, 64))
    assert torch.allclose(alpha_r, torch.rot90(expect, 1, (2, 3)).expand(2, 1, 2, 2), atol=1e-6)
    sd = net.state_dict()
    assert "prior_map" in sd and "alpha" not in sd
