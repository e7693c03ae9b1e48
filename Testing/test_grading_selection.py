"""Grading model selection and augmentation (issue 17), on real glioma-lgg-tcga patients.

- a three-part split: the network is kept at its best validation epoch, the LightGBM head is fitted on the
  validation patients only, and only the test patients are predicted;
- the batch augmentation rotates every sequence of a slice by the same angle, keeps zeros zero (the MIX
  ROI channel stays zero outside the lesion) and is refused with a one-line error when misspelt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from MedGradeCoreLib.errors import InputError
from MedGradePredictLib.augment import Augment, augment_batch
from MedGradeTrainLib.runner import checkpoint as ckpt
from MedGradeTrainLib.runner.config import load_config

REPO = Path(__file__).resolve().parents[1]
TRAIN, VAL, TEST = (["TCGA_CS_4941", "TCGA_CS_4944", "TCGA_DU_5852", "TCGA_DU_5853"],
                    ["TCGA_CS_4942", "TCGA_CS_5395"], ["TCGA_CS_4943", "TCGA_CS_6669"])


def test_three_part_split_keeps_best_epoch_fits_head_on_validation_scores_test(tmp_path, monkeypatch):
    from MedGradeCoreLib.io.lgg_tcga import sample_lgg_cohort
    from MedGradeTrainLib.kinds import grading
    from MedGradeTrainLib.runner.loop import run_training

    cfg = load_config(REPO / "configs" / "tiny-grading.json")
    cfg["kind"].update(cohort=str(sample_lgg_cohort()), augment={"rotate_deg": 15, "intensity": 0.1})
    (tmp_path / "split.json").write_text(json.dumps({"splits": [
        {"name": "fold0", "train": TRAIN, "val": VAL, "test": TEST}]}))
    cfg["split"] = {"mode": "kfold", "folds": 2, "file": str(tmp_path / "split.json")}
    cfg["final_fit"] = False
    cfg["train"].update(epochs=3, restore_best=True, checkpoint_every_steps=0)

    calls = {"n": 0}
    validate = grading.GradingKind.validate

    def worsening(self, model, split, device):  # real validation, then a loss that grows after epoch 1
        out = validate(self, model, split, device)
        calls["n"] += 1
        return dict(out, val_loss=float(calls["n"]))

    head_cases: list[list[str]] = []
    fit_head = grading.fit_head_model

    def spy(cfg_, settings, net, data, device, network_cases=None):
        head_cases.append(sorted({str(c) for c in data.case}))
        return fit_head(cfg_, settings, net, data, device, network_cases)

    monkeypatch.setattr(grading.GradingKind, "validate", worsening)
    monkeypatch.setattr(grading, "fit_head_model", spy)
    res = run_training(cfg, tmp_path / "run", stdout=None)

    assert res.summary["splits"][0]["best_epoch"] == 1 and res.summary["splits"][0]["epochs_run"] == 3
    best = ckpt.load_verified(tmp_path / "run" / "splits" / "fold0" / "best.pt")["model"]
    kept = res.kind._heads["fold0"].net.state_dict()
    assert all(torch.equal(best[k], kept[k]) for k in best)  # the head sits on epoch 1's network
    patient = {c.case_id: c.patient_id for c in res.kind.cases}
    assert len(head_cases) == 1 and {patient[c] for c in head_cases[0]} == set(VAL)
    preds = json.loads((tmp_path / "run" / "cv" / "predictions.json").read_text())
    assert sorted(r["patient_id"] for r in preds) == TEST


def _polar(v):
    """Angle (degrees) and radius of each slice's intensity centroid about the image centre (channel 0)."""
    yy, xx = torch.meshgrid(torch.arange(32.0) - 15.5, torch.arange(32.0) - 15.5, indexing="ij")
    w = v[:, 0].abs()
    cy, cx = (w * yy).sum((1, 2)) / w.sum((1, 2)), (w * xx).sum((1, 2)) / w.sum((1, 2))
    return torch.rad2deg(torch.atan2(cy, cx)), torch.hypot(cy, cx)


def _block() -> torch.Tensor:
    img = torch.zeros(4, 2, 32, 32)
    img[:, :, 6:10, 20:26] = torch.rand(4, 2, 4, 6) + 1.0  # a bright block off centre, background exactly 0
    return img


def test_rotation_one_angle_per_slice_for_every_sequence():
    torch.manual_seed(0)
    img = _block()
    x = {"flair": img, "t1c": img.clone()}
    out = augment_batch(x, Augment(rotate_deg=40))
    assert torch.equal(x["flair"], img)  # the input is left alone
    assert torch.equal(out["flair"], out["t1c"])  # the same angle for both sequences of a slice
    a0, r0 = _polar(img)
    a1, r1 = _polar(out["flair"])
    turned = (a1 - a0).abs()
    assert (turned > 0.5).all() and (turned <= 40.5).all() and len(set(turned.tolist())) == 4  # one per slice
    assert torch.allclose(r1, r0, atol=1.0)  # turned about the centre, not moved
    assert augment_batch(x, Augment()) is x


def test_intensity_change_keeps_zeros_zero():
    torch.manual_seed(0)
    img = _block()
    out = augment_batch({"flair": img, "t1c": img.clone()}, Augment(intensity=0.2))
    inside = img != 0
    assert torch.equal(out["flair"] != 0, inside)  # the ROI channel stays zero outside the lesion
    changed = (out["flair"] - img)[inside].abs()
    assert changed.max() > 0.01 and changed.max() <= 0.2 * 2.0 + 0.2 + 1e-6
    assert not torch.equal(out["flair"], out["t1c"])  # gain and offset drawn per sequence


def test_misspelt_augmentation_is_refused(tmp_path):
    from MedGradeTrainLib.kinds.grading import GradingKind

    cfg = load_config(REPO / "configs" / "tiny-grading.json")
    with pytest.raises(InputError, match="rotate_degrees"):
        GradingKind({k: v for k, v in cfg["kind"].items() if k != "name"} | {"augment": {"rotate_degrees": 10}},
                    tmp_path)
