"""Wrong sequences and wrong anatomy (issue 10, items 10-11), built on the fly from real skull-stripped scans
(TCGA-FG-6692 in BraTS space): swapped T1c/T2 and a left-right flipped T2 are reported in the command output,
quality.json and on the Slicer nodes; a breast MR is refused at the first step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk

from MedGradeSegmentLib.preprocess.consistency import mirror_left_right
from MedGradeCoreLib.cli import main

BRATS = "glioma-native/TCGA-FG-6692/brats-space/{}_bet.nii.gz"


def _case(sample, tmp_path: Path, how: str) -> Path:
    t1c = sitk.ReadImage(str(sample(BRATS.format("t1c"))))[::2, ::2, ::2]  # 2 mm: a fast test
    t2 = sitk.ReadImage(str(sample(BRATS.format("t2"))))[::2, ::2, ::2]
    if how == "swapped":
        t1c, t2 = t2, t1c  # the T2 saved as t1c and the other way round
    elif how == "flipped":
        t2 = mirror_left_right(t2)  # a T2 series stored left-right mirrored
    case = tmp_path / how / "TCGA-FG-6692"
    case.mkdir(parents=True)
    sitk.WriteImage(t1c, str(case / "t1c.nii.gz"))
    sitk.WriteImage(t2, str(case / "t2.nii.gz"))
    return case


def _preprocess(case: Path, out: Path, capsys) -> tuple[list[str], list[str]]:
    assert main(["preprocess", str(case), "--output", str(out), "--no-skull-strip", "--spacing", "2",
                 "--slices", "5"]) == 0
    printed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("warning:")]
    stored = json.loads((out / case.name / "quality.json").read_text())["warnings"]
    return printed, stored


@pytest.mark.parametrize("how,expected", [
    ("as-acquired", []),
    ("swapped", ["t1c: its contrast looks T2-weighted", "t2: its contrast looks T1-weighted"]),
    ("flipped", ["t2: its left-right mirror image matches t1c better"]),
])
def test_swapped_or_flipped_sequences_are_reported(sample, tmp_path, capsys, how, expected):
    printed, stored = _preprocess(_case(sample, tmp_path, how), tmp_path / "out", capsys)
    for text in expected:
        assert any(text in w for w in stored), stored
        assert any(text in w for w in printed), printed
    if not expected:
        assert not [w for w in stored if "contrast looks" in w or "mirror image" in w], stored


def test_warnings_reach_the_slicer_nodes(sample, tmp_path, capsys, slicer_app):
    from MedGradeCoreLib.scene import get_provenance, load_preprocessed_into_scene

    out = tmp_path / "out"
    _preprocess(_case(sample, tmp_path, "swapped"), out, capsys)
    nodes = load_preprocessed_into_scene(slicer_app.scene, out / "TCGA-FG-6692")
    warnings = json.loads(get_provenance(nodes["volumes"]["t1c"])["warnings"])
    assert any("contrast looks T2-weighted" in w for w in warnings)


def test_breast_mr_is_refused_at_preprocessing(sample, tmp_path, capsys):
    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(sample("breast-mr/breast1_image.nrrd"), case / "t1c.nrrd")
    assert main(["preprocess", str(case), "--output", str(tmp_path / "out"), "--no-skull-strip"]) == 1
    err = capsys.readouterr().err
    assert "t1c.nrrd: no usable brain found" in err and "brain MR" in err
    assert not (tmp_path / "out" / "case").exists()
