"""How a training run is launched: here in one background process, or on a cluster through a Slurm
batch script (one GPU). No Qt; the MedGradeTrain panel and scripts use it.

Training is single-process (one GPU or the CPU); multi-GPU (torchrun / DDP) training is not offered
until the training code shards its data and synchronises gradients."""

from __future__ import annotations

import json
import shlex
from pathlib import Path


TRAIN_COMMANDS = {"segmentation": "train-seg", "grading": "train-grade"}
LAUNCHERS = ("local", "slurm")
SEG_CONFIG_NAME = "train-seg-config.json"


def cohort_case_dirs(cohort: str | Path) -> list[Path]:
    """The preprocessed case folders (with ``case.json``) directly inside ``cohort``, sorted."""
    return sorted(d for d in Path(cohort).iterdir() if (d / "case.json").is_file())


def write_train_seg_config(config: str | Path, cohort: str | Path, output: str | Path,
                           labels: str | Path | None = None, device: str = "auto") -> Path:
    """``train-seg`` reads cases and device from its config only: write ``<output>/train-seg-config.json``,
    the user's config (relative paths resolved) with ``cases`` = every preprocessed case of ``cohort``
    (grade from the labels CSV's ``grade`` column when given), ``output_dir`` = ``output`` and ``device``."""
    from MedGradeSegmentLib.errors import InputError
    from MedGradeSegmentLib.segmentation.config import CaseSpec, TrainConfig

    data = json.loads(Path(config).read_text())
    case_dirs = cohort_case_dirs(cohort)
    if not case_dirs:
        raise InputError(cohort, "no preprocessed case folders (with case.json) in the cohort folder")
    grades = {}
    if labels:
        from MedGradeSegmentLib.io.clinical_csv import read_labels_csv

        grades = {pid: row.get("grade") for pid, row in read_labels_csv(labels).items()}
    data.update(cases=[], output_dir=str(Path(output).resolve()), device=device)
    cfg = TrainConfig.from_dict(data, str(config))
    if cfg.template and not Path(cfg.template).is_absolute() and (Path(config).parent / cfg.template).is_file():
        cfg.template = str((Path(config).parent / cfg.template).resolve())
    cfg.cases = [CaseSpec(case_dir=str(d.resolve()), grade=grades.get(d.name)) for d in case_dirs]
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    path = out / SEG_CONFIG_NAME
    path.write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    return path


def train_seg_args(config: str | Path, output: str | Path) -> list[str]:
    """``medgrade train-seg --config CONFIG --output DIR``."""
    return ["train-seg", "--config", str(config), "--output", str(output)]


def train_grade_args(config: str | Path, cohort: str | Path, output: str | Path, labels: str | Path | None = None,
                     device: str = "auto") -> list[str]:
    """``medgrade train-grade --config CONFIG --cohort DIR --output DIR --device D [--labels CSV]``."""
    args = ["train-grade", "--config", str(config), "--cohort", str(cohort), "--output", str(output),
            "--device", device]
    return args + (["--labels", str(labels)] if labels else [])


def training_args(kind: str, config: str | Path, cohort: str | Path, output: str | Path,
                  labels: str | Path | None = None, device: str = "auto") -> list[str]:
    """``medgrade`` arguments of a training run; for ``segmentation`` this writes the effective config
    (:func:`write_train_seg_config`) into ``output`` first."""
    if kind == "segmentation":
        return train_seg_args(write_train_seg_config(config, cohort, output, labels, device), output)
    if kind == "grading":
        return train_grade_args(config, cohort, output, labels, device)
    raise ValueError(f"unknown model kind {kind!r}; choose {', '.join(TRAIN_COMMANDS)}")


def slurm_script(medgrade_args: list[str], job_name: str, log_dir: str | Path,
                 python: str = "python", hours: int = 24, cpus: int = 8) -> str:
    """An ``sbatch`` script running the same ``medgrade`` command on one node with one GPU."""
    cmd = " ".join(shlex.quote(a) for a in [python, "-m", "MedGradeTrainLib.cli", *medgrade_args])
    return "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        "#SBATCH --nodes=1",
        "#SBATCH --gres=gpu:1",
        f"#SBATCH --cpus-per-task={int(cpus)}",
        f"#SBATCH --time={int(hours)}:00:00",
        f"#SBATCH --output={Path(log_dir) / (job_name + '-%j.log')}",
        "set -euo pipefail",
        "# Activate the environment that has MedGrade installed (pip install medgrade) before submitting.",
        cmd,
        "",
    ])

