"""Write the shipped grading bundle from a ``grade_cv.py`` run (issue 17), as ``ship_seg.py`` does for
segmentation.

The shipped model is the KiNet + LightGBM model of the cross-validation fold whose *inner validation* loss
was lowest (test patients play no part in the choice), at that fold's best-validation checkpoint, with its
head fitted on that fold's validation patients. Reason: model selection a reviewer accepts (the last epoch
is not the model) and a model whose unseen patients are known, so its Grad-CAM and its answers can be
checked on patients it never saw; the cost is that it trained on 3/5 of the 68 graded patients. The
manifest carries the CV figures of the recipe (all folds, test patients only), the baselines on the same
folds, the Grad-CAM figure on unseen patients, the shipped fold's held-out patients, hardware and budget.

    python experiments/ship_grade.py --cv experiments/results/grade_cv_1mm --baselines experiments/results/grade_cv \
        --run /tmp/grade-cv-1mm/runs/kinet --out MedGradePredict/MedGradePredictLib/bundled_models
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from MedGradeCoreLib.bundle import read_manifest, write_bundle

from train_shipped import DATA, GRADE_ID


def figure(res: dict, fusion: str) -> str:
    p = res["fused"][fusion]["patient"]
    lo, hi = p["auc_ci95"]
    return f"{p['auc']:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv", default="experiments/results/grade_cv")
    ap.add_argument("--run", required=True, help="grade_cv.py's run folder of KiNet (<work>/runs/kinet)")
    ap.add_argument("--baselines", help="grade_cv.py results of the baselines on the same folds (default: --cv)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cv, run = Path(args.cv), Path(args.run)
    kinet = json.loads((cv / "kinet.json").read_text())
    bdir = Path(args.baselines or args.cv)  # the same folds (grade_cv.py's folds.json) for every method
    base = {m: json.loads((bdir / f"{m}.json").read_text()) for m in ("early", "radiomics")
            if (bdir / f"{m}.json").is_file()}
    if base and json.loads((bdir / "folds.json").read_text()) != json.loads((cv / "folds.json").read_text()):
        raise SystemExit(f"{bdir}: other folds than {cv}; the baselines must be on the same folds")
    # the fold with the lowest inner-validation loss (the runner's best_metric); test figures play no part
    fold = min(kinet["folds"], key=lambda r: r["best_metric"])
    src = run / "splits" / fold["name"] / "bundle"
    manifest = read_manifest(src, verify=True)
    s, heat = kinet["settings"], kinet.get("heatmap", {})
    held_out = manifest.metrics["held_out_patients"]
    own = [r for r in heat.get("rows", []) if r["patient_id"] in set(held_out)]
    near = figure(kinet, "near")
    manifest.model_id = GRADE_ID
    manifest.trained_on = DATA.format(n=kinet["n_patients"]) + (
        f" Grading: the graded patients with a real T1c; label G3 (positive) vs G2. These weights: "
        f"{fold['name']} of the 5-fold CV: the network trained on that fold's training part, the checkpoint chosen "
        f"and the LightGBM head fitted on its {len(manifest.metrics.get('validation_patients', []))} validation "
        f"patients; its {len(held_out)} test patients never seen (metrics.shipped_fold.held_out_patients).")
    manifest.description = (
        f"KiNet (T1c-IN, FLAIR-IN, Merge-IN by concatenation, ResNeSt-like blocks, width {s['width']}, BMS loss) + "
        "LightGBM head on multi-scale features + age + sex, fitted on the validation patients' features (out of "
        f"fold); MIX inputs (whole slice, {s['size']}x{s['size']} at {s['spacing']} mm, z-scored per volume in the "
        f"brain), K = {s['k']} slices over the graded mask's lesion extent; patient fusion Near by default. Tells "
        "WHO grade 3 from grade 2 in lower-grade glioma; not Ki-67. Training: AdamW lr "
        f"{s['lr']}, batch 16, flip + rotation +-{s['rotate']} degrees + intensity +-{s['intensity']}, at most "
        f"{s['epochs']} epochs, learning rate halved on a validation plateau, early stopping (patience "
        f"{s['patience']}), best-validation checkpoint kept (this fold: epoch {fold['best_epoch']} of "
        f"{fold['epochs_run']}). Cross-validation of the recipe (68 patients, test folds only): patient AUC Near "
        f"{near}, All {figure(kinet, 'all')}"
        + (f"; pyradiomics + logistic regression on the same folds {figure(base['radiomics'], 'all')}, better than "
           "this network" if "radiomics" in base else "")
        + (f". Grad-CAM on unseen patients: median {heat['median_share_near']:.2f} of the hottest tenth of brain "
           f"voxels within 10 mm of the lesion (uniform map {heat['mean_uniform_share']:.2f})" if heat else "")
        + f". Hardware: {kinet['hardware']}. Limits: 68 patients of one data set (5 TCGA sites), a 2-core CPU "
          "budget, a compact network; a research model, not a diagnostic device.")
    near_cv = kinet["fused"]["near"]["patient"]
    manifest.metrics = {
        # the flat figure the patient report quotes (MedGradePredictLib.report: AUC, CI, accuracy, ..., n)
        "cv_68_tcga_lgg_patients_near": {k: near_cv[k] for k in ("auc", "auc_ci95", "accuracy", "sensitivity",
                                                                  "specificity", "n")},
        "cross_validation": dict({k: v for k, v in kinet.items() if k not in ("rows", "heatmap")},
                                 heatmap_unseen={k: v for k, v in heat.items() if k != "rows"}),
        "baselines_same_folds": {m: {k: v for k, v in r.items() if k != "rows"} for m, r in base.items()},
        "shipped_fold": {"name": fold["name"], "best_epoch": fold["best_epoch"], "epochs_run": fold["epochs_run"],
                         "inner_validation_loss": fold["best_metric"], "held_out_patients": held_out,
                         "validation_patients": manifest.metrics.get("validation_patients", []),
                         "gradcam_on_held_out": own},
        "data": ("glioma-lgg-tcga, 68 graded patients with a real T1c; 5-fold patient-level CV stratified by grade x "
                 "institution, 6:2:2 (experiments/results/grade_cv/folds.json), test patients only")}
    dest, tmp = Path(args.out) / GRADE_ID, Path(args.out) / (GRADE_ID + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_bundle(tmp, manifest, {rel: src / rel for rel in manifest.files})  # copies the fold's files unchanged
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print("bundle:", dest, "from", fold["name"], flush=True)


if __name__ == "__main__":
    main()
