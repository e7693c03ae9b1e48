"""``medgrade preprocess`` on a folder of cases, one of them broken."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import SimpleITK as sitk

from MedGradeCoreLib.cli import main


def test_folder_with_one_broken_case(sample, tmp_path, capsys):
    cohort = tmp_path / "cohort"
    good = cohort / "TCGA-FG-6692"
    good.mkdir(parents=True)
    for seq in ("t1c", "t2"):
        image = sitk.ReadImage(str(sample(f"glioma-native/TCGA-FG-6692/{seq}.nii.gz")))
        sitk.WriteImage(image[::2, ::2, :], str(good / f"{seq}.nii.gz"))  # halve the matrix: a fast test
    bad = cohort / "BROKEN-001"
    bad.mkdir()
    shutil.copy(good / "t1c.nii.gz", bad / "t1c.nii.gz")
    (bad / "t2.nii.gz").write_bytes((good / "t2.nii.gz").read_bytes()[:300])  # truncated NIfTI
    out = tmp_path / "out"

    code = main(["preprocess", str(cohort), "--output", str(out), "--no-skull-strip", "--spacing", "2",
                 "--slices", "5"])

    assert code != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "BROKEN-001" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["TCGA-FG-6692"]
    info = json.loads((out / "TCGA-FG-6692" / "case.json").read_text())
    assert info["parameters"]["spacing"] == [2.0, 2.0, 2.0] and len(info["slices"]) == 5
    for rel in [*info["sequences"].values(), info["brain_mask"], *info["transforms"].values(), "../TCGA-FG-6692/quality.json"]:
        assert (out / "TCGA-FG-6692" / rel).is_file()


def test_progress_json_puts_case_errors_on_stdout(sample, tmp_path):
    # the Slicer panels run `medgrade ... --progress-json` and read stdout only for progress and errors
    bad = tmp_path / "cohort" / "BROKEN-001"
    bad.mkdir(parents=True)
    (bad / "t1c.nii.gz").write_bytes(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz").read_bytes()[:300])
    proc = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "preprocess", str(tmp_path / "cohort"),
                           "--output", str(tmp_path / "out"), "--no-skull-strip", "--progress-json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "BROKEN-001" in errors[0] and "truncated" in errors[0], proc.stdout
    assert "error:" not in proc.stderr
    assert any(line.startswith("MEDGRADE-PROGRESS ") for line in proc.stdout.splitlines())
