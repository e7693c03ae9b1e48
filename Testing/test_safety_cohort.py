"""Issue 18, items 3, 15, 16, 18: ``cohort export`` leaks no identifier planted anywhere in the inputs and
keeps the labels a config needs; DICOM cases are checked and exported; symlinks leaving the cohort are
reported, never followed."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.cli import main
from MedGradeCoreLib.errors import InputError
from MedGradeTrainLib.cohort import check_cohort
from MedGradeTrainLib.cohort_export import export_cohort

DATA = Path(os.environ.get("MEDGRADE_SAMPLE_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
SECRETS = ("998877", "Hartmann", "Smith", "1961-04-02", "Jane")


def _volume(path: Path, value: int = 1) -> None:
    a = np.zeros((6, 8, 8), np.int16)
    a[2:4, 2:6, 2:6] = value
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(img, str(path))


@pytest.fixture
def hostile_cohort(tmp_path) -> tuple[Path, Path]:
    """Two cases whose folder and file names, and whose clinical CSV, carry identifiers."""
    root = tmp_path / "cohort"
    for i, name in enumerate(("Doe_Jane_MRN998877", "Smith_1961-04-02")):
        d = root / name
        d.mkdir(parents=True)
        _volume(d / "t1c_MRN998877.nii.gz", 10 + i)
        _volume(d / "scan_Hartmann_998877.nii.gz", 20 + i)
        _volume(d / "lesion_mask.nii.gz", 1)
    labels = tmp_path / "clinical.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "patient", "dob", "grade", "institution", "age", "sex", "comments", "referring_doctor",
                    "ki67_note"])
        w.writerow(["Doe_Jane_MRN998877", "Jane Doe", "1961-04-02", "G2", "Hartmann Clinic", 64, "F",
                    "MRN 998877, seen by Dr Hartmann", "Dr Hartmann", "MRN998877"])
        w.writerow(["Smith_1961-04-02", "Smith", "1961-04-02", "G3", "St Elsewhere", 58, "M", "call Smith", "Smith",
                    "n/a"])
    return root, labels


def _all_bytes(folder: Path) -> str:
    """Every byte of every file under ``folder`` (gzip members decompressed) and every path, as text."""
    parts = []
    for p in folder.rglob("*"):
        parts.append(str(p.relative_to(folder)))
        if p.is_file():
            data = p.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            parts.append(data.decode("latin-1"))
    return "\n".join(parts)


def test_export_leaks_no_planted_identifier(hostile_cohort, tmp_path):
    root, labels = hostile_cohort
    r = export_cohort(root, tmp_path / "share", labels, columns=["comments", "referring_doctor", "ki67_note"])
    share = Path(r["output"])
    everything = _all_bytes(share)
    for secret in SECRETS + ("MRN", "Doe", "Elsewhere"):
        assert secret not in everything, f"{secret!r} leaked into the export"
    rows = list(csv.DictReader((share / "labels.csv").open()))
    assert [r_["patient"] for r_ in rows] == ["P0001", "P0002"]  # the clinical 'patient' never overwrites it
    assert {r_["grade"] for r_ in rows} == {"G2", "G3"} and {r_["site"] for r_ in rows} == {"S1", "S2"}
    assert "dob" not in rows[0] and all(not r_["comments"] and not r_["referring_doctor"] for r_ in rows)
    names = sorted(p.name for p in (share / "P0001").iterdir())
    assert names == ["image1.nii.gz", "mask.nii.gz", "t1c.nii.gz"]
    assert r["dropped_free_text"]["comments"] == 2


def test_export_mapping_and_output_never_touch_inputs(hostile_cohort, tmp_path):
    root, labels = hostile_cohort
    before = labels.read_bytes()
    with pytest.raises(InputError, match="overwrite an input"):
        export_cohort(root, tmp_path / "share", labels, mapping=labels)
    with pytest.raises(InputError, match="inside the cohort"):
        export_cohort(root, tmp_path / "share", labels, mapping=root / "map.csv")
    with pytest.raises(InputError, match="outside the cohort"):
        export_cohort(root, root / "share", labels)
    with pytest.raises(InputError, match="outside the cohort"):
        export_cohort(root, tmp_path, labels)
    assert labels.read_bytes() == before
    assert not list(tmp_path.glob("*partial*")) and not (root / "share").exists()


def test_export_of_lgg_tcga_keeps_grade_site_and_the_configs_columns(tmp_path, capsys):
    src = DATA / "glioma-lgg-tcga"
    root = tmp_path / "lgg"
    root.mkdir()
    for case in ("TCGA_CS_4941_19960909", "TCGA_DU_5853_19950823"):
        if not (src / case).is_dir():
            pytest.skip("glioma-lgg-tcga sample cases not here")
        shutil.copytree(src / case, root / case)
    lines = (src / "clinical.csv").read_text().splitlines()
    (root / "clinical.csv").write_text("\n".join([lines[0], *[ln for ln in lines if "CS_4941" in ln or "DU_5853" in ln]]))
    config = Path(__file__).resolve().parents[1] / "configs" / "tiny-grading.json"
    assert main(["cohort", "export", str(root), "--output", str(tmp_path / "share"), "--config", str(config)]) == 0
    rows = list(csv.DictReader((tmp_path / "share" / "labels.csv").open()))
    assert [(r["grade"], r["site"]) for r in rows] == [("G3", "S1"), ("G2", "S2")]
    assert all(r["age"] and r["sex"] in ("M", "F") for r in rows)
    assert set(rows[0]) == {"id", "patient", "grade", "site", "age", "sex"}
    assert "TCGA" not in _all_bytes(tmp_path / "share")


@pytest.fixture
def dicom_cohort(tmp_path) -> Path:
    series = DATA / "dicom" / "t1_mprage_sagittal"
    if not series.is_dir():
        pytest.skip("DICOM sample not here")
    case = tmp_path / "dcm" / "case1" / "series"
    case.mkdir(parents=True)
    for f in sorted(series.iterdir())[::4]:  # every 4th slice: a thinner but regular series
        ds = pydicom.dcmread(f)
        ds.PatientName = "Hartmann^Jane^MRN998877"
        ds.PatientID = "MRN998877"
        ds.SeriesDescription = "t1 Smith"
        ds.save_as(case / f.name)
    return tmp_path / "dcm"


def test_dicom_case_is_checked_and_exported(dicom_cohort, tmp_path, capfd):
    report = check_cohort(dicom_cohort)
    assert not report["errors"], report["errors"]
    assert "HDF5" not in capfd.readouterr().err
    r = export_cohort(dicom_cohort, tmp_path / "E")
    assert r["cases"] == 1
    img = sitk.ReadImage(str(tmp_path / "E" / "P0001" / "t1.nii.gz"))
    assert img.GetSize()[0] > 10
    assert not any(p.name.endswith("partial") for p in tmp_path.iterdir())
    for secret in SECRETS + ("MRN",):
        assert secret not in _all_bytes(tmp_path / "E")


def test_failed_export_leaves_no_partial_folder(hostile_cohort, tmp_path, monkeypatch):
    root, labels = hostile_cohort
    from MedGradeTrainLib import cohort_export

    def broken(image, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(cohort_export, "_write_clean", broken)
    with pytest.raises(OSError):
        export_cohort(root, tmp_path / "E", labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinical.csv", "cohort"]


def test_symlinks_leaving_the_cohort_are_reported_not_followed(tmp_path):
    root = tmp_path / "cohort"
    (root / "good").mkdir(parents=True)
    _volume(root / "good" / "t1.nii.gz")
    (root / "rootfs").symlink_to("/")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _volume(outside / "t2.nii.gz")
    (root / "good" / "t2.nii.gz").symlink_to(outside / "t2.nii.gz")
    t0 = time.monotonic()
    report = check_cohort(root)
    assert time.monotonic() - t0 < 10
    errs = " ".join(report["errors"])
    assert "rootfs: symlink leaving the cohort" in errs and "good: symlink leaving the cohort: t2" in errs
    rows = {r["case_id"]: r for r in report["rows"]}
    assert rows["rootfs"]["images"] == {} and "t2" not in rows["good"]["images"]
    with pytest.raises(InputError, match="symlink"):
        export_cohort(root, tmp_path / "E")


def test_cohort_readers_and_slurm_arrays_do_not_walk_up_through_symlinks(tmp_path):
    from MedGradeCoreLib.io.loader import iter_cohort
    from MedGradePredictLib.cascade import case_subfolders
    from MedGradeTrainLib.cohort_jobs import cohort_cases

    root = tmp_path / "cohort"
    (root / "good").mkdir(parents=True)
    _volume(root / "good" / "t1.nii.gz")
    (root / "rootfs").symlink_to("/")
    (root / "parent").symlink_to(tmp_path)
    t0 = time.monotonic()
    out = list(iter_cohort(root))
    assert time.monotonic() - t0 < 10
    errors = [str(e) for e in out if isinstance(e, InputError) and ("rootfs" in str(e) or "parent" in str(e))]
    assert len(out) == 3 and len(errors) == 2 and all("symlink to an enclosing folder" in e for e in errors)
    with pytest.raises(InputError, match="symlink to an enclosing folder"):
        cohort_cases(root)
    with pytest.raises(InputError, match="symlink to an enclosing folder"):  # medgrade run COHORT's own listing
        case_subfolders(root)
    (root / "rootfs").unlink()
    (root / "parent").unlink()
    elsewhere = tmp_path / "elsewhere-case"
    elsewhere.mkdir()
    (root / "linked").symlink_to(elsewhere)  # a cohort of links to cases stored elsewhere is fine here
    assert [c.name for c in cohort_cases(root)] == ["good", "linked"] == [c.name for c in case_subfolders(root)]
