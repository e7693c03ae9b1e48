"""Launch command lines: the panel's effective config over a cohort, the commands it starts (accepted by the
real CLI), torchrun and Slurm scripts (GPUs, partition, every value quoted)."""

from __future__ import annotations

import json
import shlex

import pytest

from MedGradeCoreLib.cli import build_parser
from MedGradeTrainLib.launchers import runner_args, slurm_train_script, torchrun_command
from MedGradeTrainLib.panel_support import (cancel_args, effective_config, resume_args, train_args,
                                            write_requested)


def test_panel_config_over_a_cohort(tmp_path):
    from MedGradeCoreLib.errors import InputError

    (tmp_path / "cfg.yaml").write_text("kind: {name: segmentation, patients: [a], architecture: {name: UNet}}\n"
                                       "train: {epochs: 3}\n")
    data = effective_config("segmentation", tmp_path / "cfg.yaml", tmp_path / "cohort", tmp_path / "labels.csv",
                            batch_size=4, lr=1e-3, folds=3, device="cuda", models_root=str(tmp_path / "lib"))
    assert data["kind"] == {"name": "segmentation", "architecture": {"name": "UNet"}, "cohort": str(tmp_path / "cohort"),
                            "labels": str(tmp_path / "labels.csv")}  # the tiny config's patient subset is dropped
    assert data["train"] == {"epochs": 3, "batch_size": 4, "device": "cuda", "optimizer": {"name": "AdamW", "lr": 1e-3}}
    assert data["split"] == {"mode": "kfold", "folds": 3} and data["register"] and data["models_root"]
    grading = effective_config("grading", None, tmp_path / "c", tmp_path / "l.csv")  # the shipped tiny config
    assert grading["kind"]["cohort"] == str(tmp_path / "c") and grading["kind"]["labels_csv"] == str(tmp_path / "l.csv")
    run = tmp_path / "run"
    path = write_requested(run, data)
    assert json.loads(path.read_text()) == data
    (run / "config.json").write_text("{}")
    with pytest.raises(InputError, match="already holds a run"):
        write_requested(run, data)


def test_panel_and_launcher_command_lines_parse(tmp_path):
    parser = build_parser()
    a = parser.parse_args(train_args("c.json", "r", "slurm", 2, "gpu"))
    assert (a.command, a.launcher, a.gpus, a.partition, a.detach) == ("train", "slurm", 2, "gpu", False)
    assert parser.parse_args(train_args("c.json", "r")).detach  # local runs survive closing Slicer
    assert parser.parse_args(resume_args("r", "torchrun", 4)).gpus == 4
    assert parser.parse_args(cancel_args("r")).run == "r"
    assert parser.parse_args(runner_args("c d.json", "o", "n")).run_name == "n"
    tr = torchrun_command(runner_args("c.json", "o"), gpus=4)
    assert tr[1:5] == ["-m", "torch.distributed.run", "--nproc-per-node=4", "--standalone"]
    assert tr[-5:] == ["train", "--config", "c.json", "--output", "o"]


def test_slurm_script(tmp_path):
    text = slurm_train_script(runner_args("c d.json", "/y"), "mg", gpus=1, partition="gpu")
    assert text.startswith("#!/bin/bash") and "#SBATCH --gres=gpu:1" in text and "#SBATCH --partition=gpu" in text
    assert "-m MedGradeCoreLib.cli train --config 'c d.json' --output /y" in text
    multi = slurm_train_script(runner_args("c.json", "/y"), "mg", gpus=4, nodes=2)
    assert "#SBATCH --nodes=2" in multi and "srun " in multi and "--nnodes=2" in multi
    assert shlex.split(multi.splitlines()[-1])[0] == "srun"
