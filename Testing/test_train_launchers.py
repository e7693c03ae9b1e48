"""Training launch command lines: local args, torchrun, Slurm script, and a running CommandJob."""

from __future__ import annotations

import sys

import pytest

from MedGradeTrainLib.launchers import CommandJob, slurm_script, torchrun_command, training_args


def test_training_args_and_torchrun():
    args = training_args("segmentation", "cfg.json", "/cohort", "/out", device="cuda")
    assert args[:2] == ["train-seg", "--config"] and "--labels" not in args
    assert training_args("grading", "c", "d", "o", labels="l.csv")[0] == "train-grade"
    with pytest.raises(ValueError, match="unknown model kind"):
        training_args("breast", "c", "d", "o")
    cmd = torchrun_command("py", args, 4)
    assert cmd[:5] == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4"]
    assert cmd[5:7] == ["-m", "MedGradeTrainLib.cli"] and cmd[7:] == args


def test_slurm_script(tmp_path):
    text = slurm_script(training_args("grading", "c d.json", "/x", "/y"), 2, "mg", tmp_path)
    assert text.startswith("#!/bin/bash") and "#SBATCH --gres=gpu:2" in text
    assert "'c d.json'" in text and "--nproc_per_node=2" in text


def test_command_job_runs_a_full_command_line():
    job = CommandJob([sys.executable, "-c", "import sys; print('argv', sys.argv[1:])"]).start()
    assert job.wait(timeout=60) == 0
    job.poll()
    assert job.log == ["argv ['--progress-json']"]
