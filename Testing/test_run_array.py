"""`medgrade run COHORT --launcher slurm` (issue 20): a Slurm array whose task i runs `medgrade run --shard i/K`;
the round-robin shards cover every case once, are written in the script, and pick the same cases as --shard."""

from __future__ import annotations

import re
import shlex

from MedGradeCoreLib.cli import main
from MedGradePredictLib.cohort_pool import run_cohort
from MedGradeCoreLib.progress import Progress


def _cohort(tmp_path, n=5):
    cohort = tmp_path / "my cohort"
    for i in range(n):
        (cohort / f"case{i}").mkdir(parents=True)
    return cohort


def test_print_script_shards_every_case_once(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    code = main(["run", str(cohort), "--output", str(tmp_path / "out"), "--launcher", "slurm", "--array-size", "2",
                 "--workers", "3", "--no-scene", "--print-script"])
    script, gather = capsys.readouterr().out.split("# then, with --dependency=afterany:<array job id>")
    assert code == 0 and "#SBATCH --array=0-1" in script
    [(_, line)] = re.findall(r"^  (\d)\) exec (.*) ;;$", gather, re.M)  # the gather job: one task, the table
    args = shlex.split(line)
    assert args[args.index("run") + 1:] == [str(cohort.resolve()), "--output", str((tmp_path / "out").resolve()),
                                            "--gather"]
    tasks = re.findall(r"^  (\d)\) exec (.*) ;;$", script, re.M)
    assert [t for t, _ in tasks] == ["0", "1"]
    for i, line in tasks:
        args = shlex.split(line)
        assert args[args.index("run") + 1] == str(cohort.resolve())  # quoted: the folder name has a space
        assert args[args.index("--shard") + 1] == f"{i}/2"
        assert "--workers" in args and "--no-scene" in args and "--launcher" not in args and "--print-script" not in args
    shards = dict(re.findall(r"^# task (\d): (.*)$", script, re.M))
    assert shards == {"0": "case0 case2 case4", "1": "case1 case3"}
    assert sorted(" ".join(shards.values()).split()) == [f"case{i}" for i in range(5)]


def test_shard_picks_the_cases_the_script_names(tmp_path):
    cohort = _cohort(tmp_path)
    seen: list[str] = []
    run_cohort(cohort, tmp_path / "out", None, 1, Progress(), lambda label, exc: seen.append(label), (1, 2))
    assert seen == ["case1", "case3"]  # empty folders: each fails alone, in the shard's order


def test_without_slurm_the_error_is_the_clear_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["run", str(_cohort(tmp_path)), "--output", str(tmp_path / "out"), "--launcher", "slurm"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: sbatch not found: Slurm is not installed") and "Traceback" not in err


def test_refused_gather_job_keeps_the_array_recorded_and_says_how_to_get_the_table(tmp_path, capsys, monkeypatch):
    import json
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # accepts the array, refuses the job that depends on it
    sbatch.write_text("#!/bin/sh\ncase \"$*\" in *--dependency=*) echo 'sbatch: error: dependency refused' >&2; "
                      "exit 1;; esac\necho 4242\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    code = main(["run", str(_cohort(tmp_path)), "--output", str(out), "--launcher", "slurm", "--array-size", "2"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: ") and "dependency refused" in err and "Traceback" not in err
    assert "Slurm array 4242 was submitted" in err and "--gather" in err and len(err.strip().splitlines()) == 1
    assert json.loads((out / "slurm-run-shards.json").read_text())["array_job"] == "4242"
