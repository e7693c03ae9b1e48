"""Adding a corrected case to a training cohort folder ("Add to cohort" in the Segment panel): the case folder
(volumes, masks, ``case.json`` and every corrected mask version under ``corrections/``) is copied into the
cohort and the arrival recorded in ``additions.jsonl``. Training uses the newest corrected version
(``MedGradeTrainLib.cohort``); ``medgrade retrain-status`` counts the arrivals since the model in use."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.errors import InputError

ADDITIONS = "additions.jsonl"


def add_to_cohort(case_dir: str | Path, cohort: str | Path) -> dict[str, Any]:
    """Copy ``case_dir`` (a preprocessed case folder) into ``cohort`` as ``<cohort>/<folder name>``; an older
    copy of the same case is replaced only once the new copy is complete."""
    from .segmentation.corrections import versions

    case_dir, cohort = Path(case_dir), Path(cohort)
    if not is_case_folder(case_dir):
        raise InputError(case_dir, "not a preprocessed case folder (no case.json): preprocess the case first")
    vs = versions(case_dir)
    if not vs:
        raise InputError(case_dir, "has no saved corrected mask yet: correct the lesion and save it first")
    if cohort.resolve() == case_dir.resolve().parent:
        target = case_dir  # already in the cohort
    else:
        cohort.mkdir(parents=True, exist_ok=True)
        target = cohort / case_dir.name
        tmp = cohort / f".{case_dir.name}.adding"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(case_dir, tmp)
        if target.exists():
            old = cohort / f".{case_dir.name}.replaced"
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    record = {"case": case_dir.name, "source": str(case_dir.resolve()), "version": vs[-1], "time": time.time()}
    with (cohort / ADDITIONS).open("a") as f:
        f.write(json.dumps(record) + "\n")
    return {**record, "folder": str(target)}
