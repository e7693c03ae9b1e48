"""Cohort checks on real glioma-lgg-tcga cases laid out as preprocessed case folders: a missing sequence,
a duplicated patient, a patient in two parts of a split, label balance per site, and corrected masks
(the newest version is the one the segmentation kind trains on); export without identifiers."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.cli import main as medgrade
from MedGradeTrainLib.cohort import check_cohort
from MedGradeTrainLib.cohort_export import export_cohort

CASES = {"TCGA_CS_4941": ("TCGA_CS_4941_19960909", "G3", "CS"), "TCGA_CS_4944": ("TCGA_CS_4944_20010208", "G2", "CS"),
         "TCGA_DU_5853": ("TCGA_DU_5853_19950823", "G2", "DU")}


@pytest.fixture
def cohort(tmp_path):
    from MedGradeCoreLib.io.lgg_tcga import sample_lgg_cohort

    lgg = sample_lgg_cohort()
    root = tmp_path / "cohort"
    for pid, (case, _, _) in CASES.items():
        d = root / case
        d.mkdir(parents=True)
        for name in ("flair", "t1c", "mask"):
            shutil.copyfile(lgg / case / f"{name}.nii.gz", d / f"{name}.nii.gz")
        (d / "case.json").write_text(json.dumps({"patient_id": pid, "reference": "flair", "lesion_mask": "mask.nii.gz",
                                                 "sequences": {"flair": "flair.nii.gz", "t1c": "t1c.nii.gz"}}))
    with (tmp_path / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "grade", "institution", "age", "patient_name", "scan_date"])
        for pid, (_, grade, site) in CASES.items():
            w.writerow([pid, grade, site, 50, f"Doe^{pid}", "2001-02-08"])
    return root


def _corrections(case_dir: Path) -> list[np.ndarray]:
    """Two corrected versions of the case's mask (v1: dilated, v2: v1 plus a block), as saved by the
    Segment panel (``corrections/vNNNN/lesion_mask.nii.gz``)."""
    mask = sitk.ReadImage(str(case_dir / "mask.nii.gz"))
    v1 = sitk.BinaryDilate(sitk.Cast(mask > 0, sitk.sitkUInt8), [2, 2, 0])
    a2 = sitk.GetArrayFromImage(v1)
    a2[:, 10:20, 10:20] = 1
    v2 = sitk.GetImageFromArray(a2)
    v2.CopyInformation(mask)
    out = []
    for i, img in enumerate((v1, v2), 1):
        d = case_dir / "corrections" / f"v{i:04d}"
        d.mkdir(parents=True)
        sitk.WriteImage(img, str(d / "lesion_mask.nii.gz"))
        out.append(sitk.GetArrayFromImage(img))
    return out


def test_cohort_check_flags_problems_and_reports_corrections(cohort, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    clean = check_cohort(cohort, labels, ["flair", "t1c"])
    assert clean["errors"] == [] and clean["labels"] == {"G3": 1, "G2": 2}
    assert clean["labels_per_site"] == {"CS": {"G3": 1, "G2": 1}, "DU": {"G2": 1}}
    (cohort / "TCGA_DU_5853_19950823" / "t1c.nii.gz").unlink()  # a missing sequence
    info = json.loads((cohort / "TCGA_DU_5853_19950823" / "case.json").read_text())
    del info["sequences"]["t1c"]
    (cohort / "TCGA_DU_5853_19950823" / "case.json").write_text(json.dumps(info))
    dup = cohort / "COPY_OF_4941"  # the same images under another patient id
    shutil.copytree(cohort / "TCGA_CS_4941_19960909", dup)
    info = json.loads((dup / "case.json").read_text())
    (dup / "case.json").write_text(json.dumps(dict(info, patient_id="TCGA_XX_0001")))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"splits": [{"name": "fold0", "train": ["TCGA_CS_4941", "TCGA_CS_4944"],
                                             "val": ["TCGA_CS_4944", "TCGA_DU_5853"]}]}))
    v = _corrections(cohort / "TCGA_CS_4944_20010208")
    r = check_cohort(cohort, labels, ["flair", "t1c"], split)
    text = "\n".join(r["errors"])
    assert "TCGA_DU_5853_19950823: missing sequence t1c" in text
    assert "duplicate patient: COPY_OF_4941 (TCGA_XX_0001) and TCGA_CS_4941_19960909 (TCGA_CS_4941)" in text or \
        "duplicate patient: TCGA_CS_4941_19960909 (TCGA_CS_4941) and COPY_OF_4941 (TCGA_XX_0001)" in text
    assert "patient 'TCGA_CS_4944' is in both fold0 train and fold0 validation" in text
    assert r["corrected_masks"] == {"TCGA_CS_4944_20010208": {"used": 2, "versions": [1, 2]}}
    assert medgrade(["cohort", "check", str(cohort), "--labels", str(labels), "--sequences", "flair", "t1c"]) == 1
    assert "training uses version 2" in capsys.readouterr().out

    # the segmentation kind trains on the newest corrected version (or the one asked for)
    from MedGradeTrainLib.kinds.segmentation import SegmentationKind

    settings = {"cohort": str(cohort), "sequences": ["flair"], "architecture": {"name": "UNet", "width": 4},
                "patients": ["TCGA_CS_4944"]}
    for version, expected in (("newest", v[1]), (1, v[0])):
        kind = SegmentationKind({**settings, "mask_version": version}, tmp_path / f"run-{version}")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(kind.cases[0].mask), expected)
        assert kind.mask_versions["TCGA_CS_4944_20010208"]["version"] == (2 if version == "newest" else 1)
    kind = SegmentationKind({**settings, "mask_version": "original"}, tmp_path / "run-orig")
    orig = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / "TCGA_CS_4944_20010208" / "mask.nii.gz"))) > 0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(kind.cases[0].mask), orig.astype(np.uint8))


def test_cohort_export_drops_identifiers(cohort, tmp_path):
    _corrections(cohort / "TCGA_CS_4944_20010208")
    r = export_cohort(cohort, tmp_path / "share", tmp_path / "labels.csv")
    share = Path(r["output"])
    assert sorted(p.name for p in share.iterdir()) == ["P0001", "P0002", "P0003", "README.txt", "labels.csv"]
    rows = list(csv.DictReader((share / "labels.csv").open()))
    assert set(rows[0]) == {"id", "patient", "grade", "site", "age"}  # no names, ids, dates
    # the raw bytes (a gzip header names the file it compressed) and, for .gz files, what they hold (a NIfTI
    # header's descrip / aux_file text is compressed: a grep of the raw bytes cannot see it)
    files = [p for p in share.rglob("*") if p.is_file()]
    contents = [p.read_bytes() for p in files] + [gzip.decompress(p.read_bytes()) for p in files if p.suffix == ".gz"]
    assert any(p.suffix == ".gz" for p in files)
    everything = "".join(b.decode("latin-1") for b in contents)
    for secret in ("TCGA", "Doe", "2001-02-08", "19960909"):
        assert secret not in everything
    mapping = Path(r["mapping"])
    assert share not in mapping.parents and "TCGA_CS_4944" in mapping.read_text()
    row = next(m for m in csv.DictReader(mapping.open()) if m["patient_id"] == "TCGA_CS_4944")
    assert row["mask_version"] == "2"  # the exported mask is the corrected one training uses
    exported = sitk.ReadImage(str(share / row["export_id"] / "mask.nii.gz"))
    v2 = sitk.ReadImage(str(cohort / "TCGA_CS_4944_20010208" / "corrections" / "v0002" / "lesion_mask.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(exported), sitk.GetArrayFromImage(v2))
    assert exported.GetSpacing() == v2.GetSpacing()
