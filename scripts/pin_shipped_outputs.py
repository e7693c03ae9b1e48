#!/usr/bin/env python
"""Re-measure the shipped models' answers on the bundled cases and write Testing/shipped_model_outputs.json
(what test_grade_end_to_end, test_cascade and test_glioma_cohort_e2e compare with). Run it after a shipped
bundle was retrained or replaced, review the diff, commit it with the bundle:

    python scripts/pin_shipped_outputs.py                 # every section (32 min measured on 2 busy cores)
    python scripts/pin_shipped_outputs.py --only cascade  # one section: grade, cascade, cohort

The runs are the tests' own (Testing/shipped_outputs.py); the tolerances in the file are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing"))
os.environ.setdefault("MEDGRADE_SAMPLE_MIRROR", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("MEDGRADE_CACHE", str(REPO / ".cache" / "medgrade"))

import shipped_outputs as so  # noqa: E402

TOLERANCE = {"probability": 0.03, "mask_voxels_relative": 0.03}  # when the file has none yet


def grade(work: Path) -> dict:
    """``medgrade predict`` with the shipped grader on TCGA-FG-6692 in BraTS space (its own label as mask)."""
    from MedGradeCoreLib.cli import main as medgrade

    case = so.preprocess_brats_space(work / "pre")
    assert medgrade(["predict", str(case), "--model", so.GRADER, *so.PREDICT_ARGS, "--output", str(work / "g")]) == 0
    row = json.loads((work / "g" / "predictions.json").read_text())["results"][0]
    return {"models": {so.GRADER: row["weights_sha256"]}, "values": so.grade_values(row)}


def cascade(work: Path) -> dict:
    """``medgrade run`` (deepbet -> segmentation -> grade) on the bundled native case with skull."""
    from MedGradePredictLib.cascade import run_case

    result = run_case(so.bundled_native_case(), work / "run", so.cascade_settings())
    [g] = result.grades
    seg = json.loads((result.folder / "segmentation" / "segmentation.json").read_text())
    return {"models": {so.GRADER: g.weights_sha256, so.SEGMENTER: seg["weights_sha256"]},
            "values": {**so.grade_values(g.to_dict()),
                       "mask_voxels": so.mask_voxels(result.folder / "segmentation" / "lesion_mask.nii.gz")}}


def cohort(work: Path) -> dict:
    """Three glioma-lgg-tcga patients: preprocess (deepbet) -> segment -> predict with the shipped defaults."""
    root = so.run_cohort(work / "lgg")
    models, values = {}, {}
    for pid in so.COHORT_PATIENTS:
        row = json.loads((root / "pred" / pid / "predictions.json").read_text())["results"][0]
        seg = json.loads((root / "seg" / pid / "segmentation.json").read_text())
        models.update({row["model_id"]: row["weights_sha256"], seg["model_id"]: seg["weights_sha256"]})
        values[pid] = {**so.grade_values(row), "mask_voxels": so.mask_voxels(root / "seg" / pid / "lesion_mask.nii.gz")}
    return {"models": models, "values": values}


SECTIONS = {"grade": grade, "cascade": cascade, "cohort": cohort}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(SECTIONS), action="append", help="re-measure only this section")
    args = p.parse_args(argv)
    old = json.loads(so.PINNED.read_text()) if so.PINNED.is_file() else {}
    new = {"_how_to_update": so.HOW_TO_UPDATE, "tolerance": old.get("tolerance", TOLERANCE)}
    for name in SECTIONS:
        new[name] = old.get(name)
    with tempfile.TemporaryDirectory(prefix="medgrade-pin-") as tmp:
        for name in args.only or list(SECTIONS):
            print(f"measuring {name} ...", flush=True)
            new[name] = SECTIONS[name](Path(tmp) / name)
    missing = [n for n in SECTIONS if new[n] is None]
    if missing:
        print(f"error: {so.PINNED}: no values yet for {', '.join(missing)}: run without --only", file=sys.stderr)
        return 2
    part = so.PINNED.with_name(so.PINNED.name + ".partial")
    part.write_text(json.dumps(new, indent=1) + "\n")
    os.replace(part, so.PINNED)
    print(f"written {so.PINNED}; review `git diff {so.PINNED.relative_to(REPO)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
