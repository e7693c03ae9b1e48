"""Slice data, patient-level k-fold, and a real (tiny) training run: checkpoints, resume, metrics, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedGradeSegmentLib.segmentation.config import CaseSpec, TrainConfig, load_config
from MedGradeSegmentLib.segmentation.data import (FoldLeakError, check_folds, fold_split, grade_index,
                                                  patient_kfold, select_slices, train_transforms, working_grid)
from MedGradeTrainLib.kinds.segmentation import train
from MedGradeTrainLib.runner.checkpoint import latest_valid

BRATS = "glioma-native/TCGA-FG-6692/brats-space/"


def test_kfold_is_by_patient_and_refuses_leaks():
    ids = [f"p{i}" for i in range(7)] * 3  # several slices per patient
    folds = patient_kfold(ids, 3, seed=1)
    assert sorted(p for f in folds for p in f) == sorted(set(ids))
    with pytest.raises(FoldLeakError, match="'p1' is in fold 0 and fold 1"):
        check_folds([["p0", "p1"], ["p1", "p2"]])
    samples = [{"patient_id": p} for p in ids]
    tr, va = fold_split(samples, folds, 0)
    assert not {s["patient_id"] for s in tr} & {s["patient_id"] for s in va}
    with pytest.raises(FoldLeakError):
        fold_split(samples, [["p0", "p1"], ["p1"]], 0)
    with pytest.raises(ValueError, match="2 <= k"):
        patient_kfold(["a", "b"], 3)


def test_augmentation_and_grid(sample):
    img = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    grid = working_grid(img, 1.0)
    assert grid.GetSpacing()[:2] == (1.0, 1.0) and grid.GetSpacing()[2] == pytest.approx(6.5)
    assert grid.GetSize()[:2] == (200, 200)  # same 200 mm field of view
    t = train_transforms(pad=336, crop=224)
    s = {"image": np.random.randn(1, 240, 240).astype(np.float32), "label": np.zeros((1, 240, 240), np.float32),
         "weight": np.ones((1, 240, 240), np.float32)}
    s["label"][0, 100:140, 90:120] = 1
    out = t(s)
    assert all(tuple(out[k].shape) == (1, 224, 224) for k in ("image", "label", "weight"))
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
    lab = np.zeros((30, 4, 4), np.uint8)
    lab[10:15] = 1
    assert select_slices(lab, 3, "lesion") == [10, 12, 14]
    assert select_slices(lab, 40, "lesion", margin=2) == list(range(8, 17))
    assert grade_index("HGG") == 1 and grade_index("low") == 0 and grade_index(None) == -1


def _config(sample, out, **kw) -> TrainConfig:
    cases = [CaseSpec("TCGA-02-0003", images={"t1c": str(sample("brain-mr/brain1_image.nrrd"))},
                      mask=str(sample("brain-mr/brain1_label.nrrd")), grade="HGG"),
             CaseSpec("TCGA-FG-6692", images={"t1c": str(sample(BRATS + "t1c_bet.nii.gz")),
                                              "t2": str(sample(BRATS + "t2_bet.nii.gz"))},
                      mask=str(sample(BRATS + "seg_model_fusion.nii.gz")), lesion_labels=[1, 4], grade="LGG")]
    base = dict(cases=cases, output_dir=str(out), architecture={"embed_dim": 12, "num_heads": [1, 2, 4, 8],
                                                                 "prior_size": 64},
                epochs=1, batch_size=4, folds=2, slices_per_case=2, slice_selection="lesion", pad=96, crop=64,
                inplane_spacing=2.0,
                atlas_affine=False, atlas_shrink=[8, 4], final_fit=False, device="cpu")
    return TrainConfig(**{**base, **kw})


def test_training_run_checkpoints_resume_and_bundle(sample, tmp_path):
    cfg = _config(sample, tmp_path / "run", model_id="tiny-seg")
    res = train(cfg)
    assert len(res.folds) == 2
    for k, m in enumerate(res.folds):
        assert set(m["val_patients"]).isdisjoint(m["train_patients"])
        # scored on the held-out patient's lesion slices only, never NaN (both patients have lesions)
        assert m["n_lesion_slices"] > 0
        assert 0.0 <= m["dsc"] <= 1.0 and not np.isnan(m["dsc"])
        assert latest_valid(tmp_path / "run" / "splits" / f"fold{k}" / "checkpoints") is not None
    assert (tmp_path / "run" / "fpg_atlas.nii.gz").is_file()
    manifest = json.loads((res.bundle / "manifest.json").read_text())
    assert manifest["architecture"]["fpg_loss"] and len(manifest["metrics"]["folds"]) == 2
    # resume: a second run with one more epoch continues from the saved epoch
    ck = latest_valid(tmp_path / "run" / "splits" / "fold0" / "checkpoints")
    assert ck["position"]["epoch"] == 1 and len(json.loads(ck["loop"])["history"]) == 1  # one epoch done
    train(_config(sample, tmp_path / "run", epochs=2, folds=2))
    ck = latest_valid(tmp_path / "run" / "splits" / "fold0" / "checkpoints")
    assert ck["position"]["epoch"] == 2 and len(json.loads(ck["loop"])["history"]) == 2


def test_train_seg_command_with_unet_baseline(sample, tmp_path):
    from MedGradeCoreLib.cli import main

    cfg = _config(sample, "out", architecture={"name": "UNet", "width": 4})
    data = cfg.to_dict()
    (tmp_path / "cfg.json").write_text(json.dumps(data))
    assert load_config(tmp_path / "cfg.json").output_dir == str(tmp_path / "out")
    assert main(["train-seg", "--config", str(tmp_path / "cfg.json")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["summary"]["architecture"] == "UNet" and len(metrics["folds"]) == 2
    assert not (tmp_path / "out" / "fpg_atlas.nii.gz").exists()  # no FPG, no atlas, no registration
    (tmp_path / "bad.json").write_text(json.dumps({**data, "epochz": 3}))
    assert main(["train-seg", "--config", str(tmp_path / "bad.json")]) == 2


def test_training_can_be_cancelled(sample, tmp_path):
    from MedGradeCoreLib.errors import CancelledError
    from MedGradeCoreLib.progress import Progress

    seen: list[str] = []

    def on_progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("epoch"):
            progress.cancel()  # the user presses Cancel once training has started

    progress = Progress(on_progress)
    with pytest.raises(CancelledError):
        train(_config(sample, tmp_path / "run", architecture={"name": "UNet", "width": 4}), progress)
    assert any(m.startswith("epoch 1/1") for m in seen)
    assert not (tmp_path / "run" / "metrics.json").exists()
