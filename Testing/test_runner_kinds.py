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
