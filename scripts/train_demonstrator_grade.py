"""Train the bundled *plumbing demonstrator* grading model (KiNet + LightGBM head).

It is trained on a toy label built from real slices of TCGA-FG-6692 (brats-space data, model-made
lesion label): whether the T1c and T2 inputs were exchanged ("swapped") or not ("as-acquired"),
see ``MedGradePredictLib.toy``. It proves that training, bundling and prediction work end to end;
it is NOT a Ki-67, grade or IDH model and says nothing about any patient's tumour.

    python scripts/train_demonstrator_grade.py [--output DIR] [--epochs N]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from MedGradeCoreLib.io import load_case
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradePredictLib.evaluate import evaluate_rows
from MedGradePredictLib.model_bundle import save_grading_bundle
from MedGradePredictLib.toy import TOY_TASK, swap_toy_cohort
from MedGradePredictLib.train import TrainConfig
from MedGradeTrainLib.kinds.grading import cross_validate, fit_grading_model

MODEL_ID = "demo-kinet-toy-swap"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "MedGradePredict/MedGradePredictLib/bundled_models" / MODEL_ID


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()
    files = fetch_dataset("tcga-fg-6692-brats-space")
    case = load_case(next(iter(files.values())).parent, ["t1c", "t2"], patient_id="TCGA-FG-6692")
    cases = swap_toy_cohort(case, window=4, size=64)
    cfg = TrainConfig(model_id=MODEL_ID, task=TOY_TASK.to_dict(), architecture={"name": "kinet", "width": 8},
                      size=64, k=20, epochs=args.epochs, batch_size=16, lr=2e-3, test_fraction=0.3, seed=0)
    rows, _ = cross_validate(cfg, cases)
    for r in rows:
        r["probability"] = r["probability_near"]
    metrics = evaluate_rows(rows, n_boot=500)
    print("hold-out (pseudo-patients, Near fusion):", {k: metrics["pooled"][k] for k in ("auc", "accuracy", "n")})
    model, history = fit_grading_model(cfg, cases)
    if args.output.exists():
        shutil.rmtree(args.output)
    save_grading_bundle(
        model, args.output, metrics={"holdout_pseudo_patients": metrics["pooled"]},
        trained_on=("PLUMBING DEMONSTRATOR: toy label 'T1c/T2 inputs swapped' built from real slices of one "
                    "TCGA-LGG patient (TCGA-FG-6692, brats-space, model lesion label); 13 pseudo-patients of "
                    "4 slices, each as-acquired and swapped"),
        description=("Not a Ki-67/grade/IDH model. KiNet (width 8, MIX inputs, BMS loss) + LightGBM head, "
                     "trained to tell whether the T1c and T2 inputs were exchanged; for demos and tests."),
        training={"epochs": cfg.epochs, "final_loss": history[-1]["total"],
                  "script": "scripts/train_demonstrator_grade.py"})
    print("bundle:", args.output, sum(f.stat().st_size for f in args.output.iterdir()) // 1024, "KiB")


if __name__ == "__main__":
    main()
