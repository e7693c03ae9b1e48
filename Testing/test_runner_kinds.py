"""The segmentation and grading kinds through the runner with the shipped tiny configs (real
glioma-lgg-tcga patients): SIGKILL mid-epoch + `medgrade resume` reach the weights of an uninterrupted
run in every split; fold atlases and LightGBM heads come from each fold's training patients only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from MedGradeTrainLib.runner.config import load_config
from test_runner import kill_resume_and_compare

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _lgg_cohort():
    from MedGradeCoreLib.io.lgg_tcga import sample_lgg_cohort

    root = sample_lgg_cohort()  # the registry's verified copy of ../shared/data/glioma-lgg-tcga
    return root


def _cfg(name: str, root: Path, epochs: int) -> dict:
    cfg = load_config(REPO / "configs" / name)
    cfg["kind"]["cohort"] = str(root)
    cfg["train"]["epochs"] = epochs
    return cfg


def test_segmentation_config_killed_and_resumed(tmp_path, _lgg_cohort):
    cfg = _cfg("tiny-segmentation.json", _lgg_cohort, 2)
    kill_resume_and_compare(cfg, tmp_path, kill_at=4)
    split = json.loads((tmp_path / "killed" / "split.json").read_text())
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert [f["val_patients"] for f in summary["folds"]] == [s["val"] for s in split["splits"]]
    assert all(0.0 <= f["dsc"] <= 1.0 for f in summary["folds"])
    manifest = json.loads((Path(summary["bundle"]) / "manifest.json").read_text())
    assert manifest["kind"] == "segmentation" and manifest["inputs"] == ["flair", "t1c"]


def test_grading_config_killed_and_resumed(tmp_path, _lgg_cohort):
    cfg = _cfg("tiny-grading.json", _lgg_cohort, 3)
    kill_resume_and_compare(cfg, tmp_path, kill_at=4)
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    preds = json.loads((tmp_path / "killed" / "cv" / "predictions.json").read_text())
    split = json.loads((tmp_path / "killed" / "split.json").read_text())
    for f, s in enumerate(split["splits"]):  # out-of-fold: each patient predicted by the fold that held it out
        assert {r["patient_id"] for r in preds if r["fold"] == f} == set(s["val"])
    assert summary["patients_predicted"] == 8 and "auc_ci95" in summary["cross_validation"]["pooled"]
    assert (Path(summary["bundle"]) / "head_lightgbm.txt").is_file()


def test_slice_cache_hits_and_is_invalidated_by_an_input_change(tmp_path, monkeypatch, _lgg_cohort):
    import shutil

    import numpy as np

    from MedGradeTrainLib.kinds.segmentation import SegmentationKind

    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path / "cache"))
    cohort = tmp_path / "lgg"
    cohort.mkdir()
    lines = (_lgg_cohort / "clinical.csv").read_text().splitlines()
    (cohort / "clinical.csv").write_text("\n".join([lines[0]] + [x for x in lines if x.startswith(("TCGA_CS_4941,",
                                                                                                "TCGA_CS_4942,"))]) + "\n")
    for case in ("TCGA_CS_4941_19960909", "TCGA_CS_4942_19970222"):
        shutil.copytree(_lgg_cohort / case, cohort / case)
    settings = {"cohort": str(cohort), "sequences": ["flair"], "architecture": {"name": "UNet", "width": 4},
                "patients": ["TCGA_CS_4941", "TCGA_CS_4942"], "slices_per_case": 3, "inplane_spacing": 3.75}
    first = SegmentationKind(settings, tmp_path / "a").split_data("fold0", ["TCGA_CS_4941"], ["TCGA_CS_4942"])
    kind = SegmentationKind(settings, tmp_path / "b")
    again = kind.split_data("fold0", ["TCGA_CS_4941"], ["TCGA_CS_4942"])
    assert kind.cache_hits == 2 and isinstance(again.val[0]["image"], np.memmap)  # read back, not recomputed
    plain = SegmentationKind({**settings, "slice_cache": False}, tmp_path / "c").split_data(
        "fold0", ["TCGA_CS_4941"], ["TCGA_CS_4942"])
    for a, b, c in zip(first.val, again.val, plain.val):
        np.testing.assert_array_equal(a["image"], c["image"])
        np.testing.assert_array_equal(b["weight"], c["weight"])
        assert (b["patient_id"], b["z"]) == (c["patient_id"], c["z"])
    mask = cohort / "TCGA_CS_4942_19970222" / "mask.nii.gz"  # an edited mask: that case is recomputed
    import SimpleITK as sitk

    img = sitk.ReadImage(str(mask))
    arr = sitk.GetArrayFromImage(img)
    arr[arr.shape[0] // 2] = 0
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    sitk.WriteImage(out, str(mask))
    kind = SegmentationKind(settings, tmp_path / "d")
    kind.split_data("fold0", ["TCGA_CS_4941"], ["TCGA_CS_4942"])
    assert kind.cache_hits == 1


def test_prepared_data_train_through_the_runner(tmp_path, _lgg_cohort):
    """`train_network` (grading slices) and `fit` (segmentation samples) for callers that prepare their own
    data (experiments/): both train through the runner and return the per-epoch history."""
    import torch

    from MedGradePredictLib.cohort import slice_data
    from MedGradePredictLib.train import TrainConfig as GradeConfig
    from MedGradeSegmentLib.segmentation.baselines import build_model
    from MedGradeSegmentLib.segmentation.config import TrainConfig as SegConfig
    from MedGradeSegmentLib.segmentation.data import case_volumes, select_slices, slice_samples
    from MedGradeTrainLib.kinds.grading import train_network
    from MedGradeTrainLib.kinds.segmentation import fit
    from MedGradeCoreLib.io.lgg_tcga import load_lgg_case, read_lgg_cohort

    task = {"name": "who-grade", "column": "grade", "positive_class": "G3", "negative_class": "G2"}
    recs = [r for r in read_lgg_cohort(_lgg_cohort) if r.has(["flair", "t1c"])][:4]
    from MedGradePredictLib.cohort import cohort_case
    from MedGradePredictLib.tasks import get_task

    cases = [cohort_case(load_lgg_case(r, ["flair", "t1c"], "flair"), get_task(task), ["flair", "t1c"], 4, 32,
                         spacing=7.5) for r in recs]
    cfg = GradeConfig(task=task, architecture={"name": "early", "width": 4}, sequences=["flair", "t1c"], size=32,
                      epochs=1, metadata=False, clinical_columns=[], device="cpu",
                      checkpoint_dir=str(tmp_path / "grade-run"))
    net, hist = train_network(cfg, slice_data(cases, []))
    assert [h["epoch"] for h in hist] == [1] and all(h["total"] > 0 for h in hist) and not net.training
    assert (tmp_path / "grade-run" / "splits" / "final" / "checkpoints").is_dir()

    rec = read_lgg_cohort(_lgg_cohort)[0]
    case = load_lgg_case(rec, ["flair"])
    vols = case_volumes(rec.patient_id, case.images, case.mask, "flair", None, None, None, None, 3.75)
    samples = slice_samples(vols, ["flair"], select_slices(vols.label, 4, "lesion"), 0.1, 0.2)
    scfg = SegConfig(cases=[], output_dir=str(tmp_path), epochs=2, batch_size=2, pad=80, crop=64, device="cpu")
    model = build_model({"name": "UNet", "width": 4}, None)
    before = [p.detach().clone() for p in model.parameters()]
    hist = fit(model, samples, scfg, {"name": "UNet"}, "cpu", tmp_path / "seg.pt")
    assert [h["epoch"] for h in hist] == [0, 1] and (tmp_path / "seg-run" / "summary.json").is_file()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the given model was trained
