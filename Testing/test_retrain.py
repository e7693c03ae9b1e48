"""Correction-to-retrain on real glioma-lgg-tcga cases: "Add to cohort" copies a corrected case with its
versions, corrections since a model are counted, and the next case to correct is the one whose AI
probability map is most uncertain inside the brain (the reason names the uncertain volume)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.cli import main as medgrade
from MedGradeCoreLib.errors import InputError
from MedGradeTrainLib.retrain import add_to_cohort, corrected_since, uncertainty_ranking


def _case(lgg: Path, case: str, root: Path, blur_mm: float) -> Path:
    """A preprocessed-style case folder whose AI probability map is the expert mask blurred by ``blur_mm``
    (a wide blur = an uncertain lesion border)."""
    d = root / case
    d.mkdir(parents=True)
    for name in ("flair", "mask"):
        shutil.copyfile(lgg / case / f"{name}.nii.gz", d / f"{name}.nii.gz")
    (d / "case.json").write_text(json.dumps({"patient_id": case[:12], "reference": "flair", "lesion_mask": "mask.nii.gz",
                                             "sequences": {"flair": "flair.nii.gz"}}))
    mask = sitk.Cast(sitk.ReadImage(str(d / "mask.nii.gz")) > 0, sitk.sitkFloat32)
    prob = sitk.SmoothingRecursiveGaussian(mask, blur_mm) if blur_mm else mask
    (d / "segmentation").mkdir()
    sitk.WriteImage(prob, str(d / "segmentation" / "lesion_probability.nii.gz"))
    return d


def _correct(d: Path) -> None:
    v = d / "corrections" / "v0001"
    v.mkdir(parents=True)
    shutil.copyfile(d / "mask.nii.gz", v / "lesion_mask.nii.gz")
    (v / "correction.json").write_text(json.dumps({"version": 1, "created": "2020-01-01T00:00:00+00:00"}))


def test_add_to_cohort_count_since_model_and_uncertainty_ranking(tmp_path, capsys):
    from MedGradeCoreLib.io.lgg_tcga import sample_lgg_cohort

    lgg = sample_lgg_cohort()
    work, cohort = tmp_path / "work", tmp_path / "cohort"
    sharp = _case(lgg, "TCGA_CS_4941_19960909", work, 0.0)
    blurred = _case(lgg, "TCGA_CS_4944_20010208", work, 6.0)
    mild = _case(lgg, "TCGA_DU_5853_19950823", work, 2.0)
    with pytest.raises(InputError, match="has no saved corrected mask yet"):
        add_to_cohort(sharp, cohort)
    _correct(sharp)
    added = add_to_cohort(sharp, cohort)
    assert added["version"] == 1 and (cohort / sharp.name / "corrections" / "v0001" / "lesion_mask.nii.gz").is_file()
    assert json.loads((cohort / "additions.jsonl").read_text().splitlines()[0])["case"] == sharp.name
    for d in (blurred, mild):
        shutil.copytree(d, cohort / d.name)
    assert [c["case"] for c in corrected_since(cohort, None)] == [sharp.name]
    assert corrected_since(cohort, time.time()) == []  # saved (2020) before a model trained now: nothing new
    assert len(corrected_since(cohort, 1262304000.0)) == 1  # but after a model of 2010
    ranking = uncertainty_ranking(cohort)
    assert [r["case"] for r in ranking] == [blurred.name, mild.name]  # the corrected case is left out
    assert ranking[0]["uncertain_ml"] > ranking[1]["uncertain_ml"] > 0
    assert "ml of the brain with 0.2 < p < 0.8" in ranking[0]["reason"]
    with_corrected = uncertainty_ranking(cohort, include_corrected=True)
    sharp_row = next(r for r in with_corrected if r["case"] == sharp.name)
    assert sharp_row["uncertain_ml"] == 0 and sharp_row["rank"] == 3  # a 0/1 map is certain everywhere
    assert medgrade(["retrain-status", str(cohort)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 corrected case(s)") and f"1. {blurred.name}" in out
