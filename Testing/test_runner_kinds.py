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
    from MedGradeSegmentLib.io.lgg_tcga import sample_lgg_cohort

    root = sample_lgg_cohort()  # the registry's verified copy of ../shared/data/glioma-lgg-tcga
    return root


def _cfg(name: str, root: Path, epochs: int) -> dict:
    cfg = load_config(REPO / "configs" / name)
    cfg["kind"]["cohort"] = str(root)
    cfg["train"]["epochs"] = epochs
    return cfg


def test_segmentation_config_killed_and_resumed(tmp_path, _lgg_cohort):
    cfg = _cfg("tiny-segmentation.json", _lgg_cohort, 3)
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
