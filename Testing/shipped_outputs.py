"""The shipped models' answers on the bundled cases, pinned in ``shipped_model_outputs.json``.

Random or inverted weights give a grade in {G2, G3} and a probability in [0, 1] too: the tests that run the
shipped models compare what they measure with the values pinned here (with a tolerance for other CPUs and
library builds), and the runs that produce them are defined once, here, for the tests and for the script.

WHEN A SHIPPED MODEL IS RETRAINED (a new bundle in MedGradeSegmentLib/bundled_models or
MedGradePredictLib/bundled_models): its weights sha256 no longer matches the pinned one and the tests say so.
Re-measure with ``python scripts/pin_shipped_outputs.py`` (32 min on 2 busy cores; ``--only``: one part),
review the diff of Testing/shipped_model_outputs.json (a grade that flipped, a probability that moved far,
is a finding to report, not only a number to accept) and commit it with the new bundle.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

PINNED = Path(__file__).with_name("shipped_model_outputs.json")
UPDATE = "python scripts/pin_shipped_outputs.py"
HOW_TO_UPDATE = (f"A shipped model was retrained or replaced: run `{UPDATE}` (or `--only grade|cascade|cohort`), "
                 "review the diff of this file (a grade that flipped or a probability that moved far is a finding to "
                 "report) and commit it with the new bundle. Tolerances: probability absolute, mask voxels relative "
                 "(other CPUs and library builds); models: the weights sha256 the values were measured with.")
GRADER = "kinet-lgg-g2g3-t1c-flair-v1"
SEGMENTER = "unet-lgg-flair-t1c-v1"  # the default segmentation model (MedGradeSegmentLib.commands.segment)
# the grading test's clinical inputs and fusion (what the pinned probability was measured with)
PREDICT_ARGS = ["--fusion", "near", "--age", "45", "--sex", "F", "--enhancing-focus", "yes"]
COHORT_PATIENTS = ("TCGA_CS_4942", "TCGA_HT_7692", "TCGA_HT_8107")


# --- the runs (tests and script alike) ---------------------------------------------------------------------

def preprocess_brats_space(folder: Path) -> Path:
    """TCGA-FG-6692 in BraTS space (skull-stripped, co-registered; mask = model label), preprocessed."""
    from MedGradeCoreLib.io import load_case
    from MedGradeCoreLib.sample_data import fetch_dataset
    from MedGradeSegmentLib.preprocess.config import PreprocessConfig
    from MedGradeSegmentLib.preprocess.io import write_preprocessed
    from MedGradeSegmentLib.preprocess.pipeline import preprocess_case

    files = fetch_dataset("tcga-fg-6692-brats-space")
    case = load_case(next(iter(files.values())).parent, ["t1c", "flair"], patient_id="TCGA-FG-6692")
    return write_preprocessed(preprocess_case(case, PreprocessConfig(skull_strip=False, register=False)), folder)


def bundled_native_case() -> Path:
    """The bundled real case with skull (TCGA-FG-6692, four native sequences)."""
    from MedGradeCoreLib.sample_data import fetch_dataset

    return next(iter(fetch_dataset("tcga-fg-6692").values())).parent


def cascade_settings(**changes: Any):
    """``medgrade run`` settings of the cascade test: deepbet named (``auto`` picks HD-BET where CUDA is)."""
    from MedGradePredictLib.cascade import CascadeSettings
    from MedGradeSegmentLib.preprocess.config import PreprocessConfig

    return CascadeSettings(preprocess=PreprocessConfig(brain_extraction="deepbet", brain_device="cpu"),
                           device="cpu", **changes)


def run_cohort(root: Path) -> Path:
    """Three glioma-lgg-tcga patients from their case folders: preprocess (deepbet) -> segment -> predict,
    without --model (the shipped defaults). Returns ``root``."""
    from MedGradeCoreLib.cli import main as medgrade
    from MedGradeCoreLib.io import read_lgg_cohort, sample_lgg_cohort

    records = {r.patient_id: r for r in read_lgg_cohort(sample_lgg_cohort())}
    cases = root / "cases"
    for pid in COHORT_PATIENTS:
        r = records[pid]
        assert r.available == ("t1", "flair", "t1c")
        (cases / pid).mkdir(parents=True)
        for seq in r.available:  # the images only: the manual mask stays out of the user's folder
            shutil.copy(r.folder / f"{seq}.nii.gz", cases / pid / f"{seq}.nii.gz")
    assert medgrade(["preprocess", str(cases), "--output", str(root / "pre"), "--brain-extraction", "deepbet",
                     "--brain-device", "cpu"]) == 0
    for pid in COHORT_PATIENTS:
        assert medgrade(["segment", str(root / "pre" / pid), "--output", str(root / "seg" / pid)]) == 0
        assert medgrade(["predict", str(root / "pre" / pid), "--mask", str(root / "seg" / pid / "lesion_mask.nii.gz"),
                         "--output", str(root / "pred" / pid)]) == 0
    return root


# --- what is pinned of each run ------------------------------------------------------------------------------

def grade_values(row: dict[str, Any]) -> dict[str, Any]:
    """Of one result row (predictions.json, or a cascade grade's dict)."""
    return {"predicted_level": row["predicted_level"], "probability": float(row["probability"]),
            "slice_probabilities": [float(p) for p in row["slice_probabilities"]]}


def mask_voxels(path: Path) -> int:
    import SimpleITK as sitk

    return int(sitk.GetArrayViewFromImage(sitk.ReadImage(str(path))).astype(bool).sum())


# --- the comparison -------------------------------------------------------------------------------------------

def pinned(section: str) -> dict[str, Any]:
    return json.loads(PINNED.read_text())[section]


def check(section: str, models: dict[str, str], measured: dict[str, Any]) -> None:
    """``models``: model id -> weights sha256 of what ran; ``measured``: the values of :func:`grade_values`
    (nested per patient for the cohort) and ``mask_voxels``. Raises AssertionError naming each difference."""
    pin = pinned(section)
    changed = {m: sha for m, sha in models.items() if pin["models"].get(m) != sha}
    assert not changed, (f"{section}: shipped model(s) {', '.join(changed)} changed (weights sha256 "
                         f"{', '.join(s[:12] for s in changed.values())} are not the pinned ones): re-measure with "
                         f"`{UPDATE}` and review the diff")
    tol = json.loads(PINNED.read_text())["tolerance"]
    problems = _compare(pin["values"], measured, tol, section)
    assert not problems, "\n".join(problems + [f"(if a model was retrained on purpose: `{UPDATE}`)"])


def _compare(want: Any, got: Any, tol: dict[str, float], where: str) -> list[str]:
    if isinstance(want, dict):
        out = []
        for k, v in want.items():
            if k == "predicted_level" and abs(want["probability"] - 0.5) <= tol["probability"]:
                continue  # pinned within the tolerance of the 0.5 threshold: the level may go either way
            if k not in got:
                out.append(f"{where}.{k}: not measured")
            else:
                out += _compare(v, got[k], tol, f"{where}.{k}") if isinstance(v, (dict, list)) else \
                    _scalar(k, v, got[k], tol, f"{where}.{k}")
        return out
    if len(want) != len(got):
        return [f"{where}: {len(got)} values, pinned {len(want)}"]
    return [p for i, (w, g) in enumerate(zip(want, got)) for p in _scalar(where.rsplit(".", 1)[-1], w, g, tol,
                                                                          f"{where}[{i}]")]


def _scalar(key: str, want: Any, got: Any, tol: dict[str, float], where: str) -> list[str]:
    if isinstance(want, str):
        return [] if want == got else [f"{where}: {got!r}, pinned {want!r}"]
    allowed = tol["mask_voxels_relative"] * want if key == "mask_voxels" else tol["probability"]
    return [] if abs(got - want) <= allowed else [f"{where}: measured {got:.4f}, pinned {want:.4f} (+- {allowed:g})"]
