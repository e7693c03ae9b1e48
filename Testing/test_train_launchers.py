"""Training launch command lines: local args and the Slurm script."""

from __future__ import annotations


import pytest

from MedGradeTrainLib.cli import build_parser
from MedGradeTrainLib.launchers import (SEG_CONFIG_NAME, slurm_script, train_grade_args,
                                        training_args)


@pytest.fixture
def cohort(tmp_path):
    """Two case folders (case.json present) and one stray folder, plus a labels CSV with grades."""
    for name in ("P1", "P2"):
        (tmp_path / "cohort" / name).mkdir(parents=True)
        (tmp_path / "cohort" / name / "case.json").write_text("{}")
    (tmp_path / "cohort" / "notes").mkdir()
    (tmp_path / "labels.csv").write_text("id,grade\nP1,HGG\nP2,LGG\n")
    return tmp_path


def test_training_args(cohort):
    from MedGradeSegmentLib.segmentation.config import load_config

    (cohort / "cfg.json").write_text('{"epochs": 3, "architecture": {"name": "UNet", "width": 16}, '
                                     '"cases": [{"case_dir": "elsewhere"}], "output_dir": "ignored"}')
    out = cohort / "out"
    args = training_args("segmentation", cohort / "cfg.json", cohort / "cohort", out, cohort / "labels.csv", "cuda")
    assert args == ["train-seg", "--config", str(out / SEG_CONFIG_NAME), "--output", str(out)]
    cfg = load_config(out / SEG_CONFIG_NAME)  # the effective config train-seg will read
    assert [(c.case_dir, c.grade) for c in cfg.cases] == [(str(cohort / "cohort" / "P1"), "HGG"),
                                                         (str(cohort / "cohort" / "P2"), "LGG")]
    assert cfg.device == "cuda" and cfg.epochs == 3 and cfg.output_dir == str(out.resolve())
    grade = training_args("grading", "c", "d", "o", labels="l.csv")
    assert grade == train_grade_args("c", "d", "o", "l.csv") and grade[0] == "train-grade"
    parser = build_parser()  # the real CLI accepts both command lines
    assert parser.parse_args(args).config == str(out / SEG_CONFIG_NAME)
    assert parser.parse_args(grade).labels == "l.csv"
    with pytest.raises(ValueError, match="unknown model kind"):
        training_args("breast", "c", "d", "o")


def test_segmentation_training_needs_preprocessed_cases(tmp_path):
    from MedGradeSegmentLib.errors import InputError

    (tmp_path / "cfg.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no preprocessed case folders"):
        training_args("segmentation", tmp_path / "cfg.json", tmp_path / "empty", tmp_path / "out")


def test_slurm_script(tmp_path):
    text = slurm_script(training_args("grading", "c d.json", "/x", "/y"), "mg", tmp_path)
    assert text.startswith("#!/bin/bash") and "#SBATCH --gres=gpu:1" in text
    assert "-m MedGradeTrainLib.cli train-grade --config 'c d.json'" in text

