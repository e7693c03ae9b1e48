"""Put the cross-validation figures (``seg_cv.py``, ``grade_cv.py``) into the shipped bundles' manifests
without retraining: the weights, atlas and head files are copied unchanged (same sha256).

    python experiments/update_manifests.py --results experiments/results \
        --seg MedGradeSegment/MedGradeSegmentLib/bundled_models/mignet-lgg-flair-t1c-v1 \
        --grade MedGradePredict/MedGradePredictLib/bundled_models/kinet-lgg-g2g3-t1c-flair-v1
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from MedGradeCoreLib.bundle import read_manifest, write_bundle


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"note": f"{path.name} not available"}


def seg_metrics(results: Path) -> dict:
    """Per-model CV summaries without the per-patient rows (those stay in experiments/results)."""
    out = {}
    for m in ("mignet", "unet", "swin"):
        d = _load(results / "seg_cv" / m / "summary.json")
        out[m] = {k: v for k, v in d.items() if k not in ("patients", "run_dir")}
        if "per_patient" in d:
            out[m]["data"] = ("glioma-lgg-tcga, 78 patients, 5-fold patient-level CV stratified by grade x "
                              "institution (experiments/results/seg_cv/folds.json), held-out patients only")
    return out


def grade_metrics(results: Path) -> dict:
    out = {}
    for m in ("kinet", "early", "radiomics"):
        d = _load(results / "grade_cv" / f"{m}.json")
        out[m] = {k: v for k, v in d.items() if k != "rows"}
    return out


def rewrite(folder: Path, update) -> None:
    manifest = read_manifest(folder, verify=True)
    update(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(folder, copy)
        files = {rel: copy / rel for rel in manifest.files}
        shutil.rmtree(folder)
        write_bundle(folder, manifest, files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="experiments/results")
    ap.add_argument("--seg", help="(older bundles) the segmentation CV now goes in with ship_seg.py")
    ap.add_argument("--grade", required=True)
    args = ap.parse_args()
    results = Path(args.results)

    def seg(m):
        m.description = m.description.replace(
            "Per-patient 3D Dice (5-fold patient CV, same recipe) is in metrics.cross_validation.",
            "Per-patient whole-volume metrics of a 5-fold patient-level CV of the same recipe at 2 epochs x 30 "
            "batches per fold (through MedGrade's training runner; the shipped weights had 3 x 30 with the same "
            "loss and data code) are in metrics.summary.cross_validation, with MONAI U-Net and the plain "
            "Swin-UNet row on the same folds in metrics.summary.baselines_same_folds.")
        cv = seg_metrics(results)
        m.metrics.setdefault("summary", {})["cross_validation"] = cv["mignet"]
        m.metrics["summary"]["baselines_same_folds"] = {"unet": cv["unet"], "swin": cv["swin"]}

    def grade(m):
        m.metrics["cross_validation"] = grade_metrics(results)
        if "Cross-validation:" not in m.description:
            m.description += (" Cross-validation (metrics.cross_validation): 5 patient-level folds stratified by "
                              "grade x institution on the 68 patients, KiNet + LightGBM (head on a quarter of each "
                              "fold's training patients) against an early-fusion MONAI ResNet and pyradiomics + "
                              "logistic regression on the same masks and folds, through MedGrade's training runner "
                              "(3 epochs per fold; the shipped weights had 5).")

    if args.seg:
        rewrite(Path(args.seg), seg)
    rewrite(Path(args.grade), grade)


if __name__ == "__main__":
    main()
