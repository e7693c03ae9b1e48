"""Combined ROC and decision-curve figures of bench_breast.py's models (from each model's metrics.json
under bench/results/breast/figures/), written to docs/images/breast-<set>-{roc,dca}.png.

    python bench/breast_figures.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "bench" / "results" / "breast" / "figures"
OUT = ROOT / "docs" / "images"
MODELS = {"radiomics_LR": "radiomics + LR", "radiomics_LightGBM": "radiomics + LightGBM", "deep_US": "deep US branch"}
SETS = {"busbra_cv": "BUS-BRA, 5-fold CV by patient (1,318 images, 744 patients)",
        "busi_cross_site": "trained on BUS-BRA, tested on BUSI (453 images, another site)"}
TASK = "stand-in task: benign vs malignant (for grade III vs I+II)"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for key, title in SETS.items():
        reps = {MODELS[m]: json.loads((FIG / m / key / "metrics.json").read_text())
                for m in MODELS if (FIG / m / key / "metrics.json").is_file()}
        fig, ax = plt.subplots(figsize=(5.2, 5.2), dpi=110)
        for name, r in reps.items():
            m = r["metrics"]
            lo, hi = m["auc_ci95"]
            ax.plot(r["roc"]["fpr"], r["roc"]["tpr"], label=f"{name}: AUC {m['auc']:.3f} ({lo:.3f}-{hi:.3f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.02),
               title=f"{title}\n{TASK}")
        ax.title.set_fontsize(8)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(OUT / f"breast-{key}-roc.png")
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(5.6, 4.2), dpi=110)
        first = next(iter(reps.values()))["decision_curve"]
        for name, r in reps.items():
            ax.plot(r["decision_curve"]["threshold"], r["decision_curve"]["model"], label=name)
        ax.plot(first["threshold"], first["treat_all"], "k--", lw=0.8, label="treat all")
        ax.plot(first["threshold"], first["treat_none"], "k:", lw=0.8, label="treat none")
        ax.set(xlabel="threshold probability", ylabel="net benefit", xlim=(0, 1), ylim=(-0.05, 0.4),
               title=f"Decision curves, {title}\n{TASK}")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(OUT / f"breast-{key}-dca.png")
        plt.close(fig)
        print(f"{key}: " + "; ".join(f"{n} AUC {r['metrics']['auc']:.3f}" for n, r in reps.items()))


if __name__ == "__main__":
    main()
