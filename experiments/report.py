"""Print the experiment figures as Markdown tables from ``results/`` (what the README and the manifests quote).

    python experiments/report.py experiments/results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(d: dict | None, key: str, digits: int = 3) -> str:
    v = (d or {}).get(key) or {}
    if not v or v.get("mean") is None:
        return "n/a"
    return f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f}"


def seg(results: Path) -> None:
    print("| model | 3D Dice (mean ± SD) | median | slice DSC, all slices | max HD (mm) | HD95 (mm) | s/epoch | patients |")
    print("|---|---|---|---|---|---|---|---|")
    for m in ("mignet", "unet", "swin"):
        p = results / "seg_cv" / m / "summary.json"
        if not p.is_file():
            print(f"| {m} | not run | | | | | | |")
            continue
        d = json.loads(p.read_text())
        pp = d.get("per_patient") or {}
        med = (pp.get("dice_3d") or {}).get("median")
        secs = d.get("seconds_per_epoch", {}).get("mean")
        print(f"| {m} | {_f(pp, 'dice_3d')} | {med:.3f} | {_f(pp, 'slice_dsc_all')} | {_f(pp, 'hd_max_mm', 1)} | "
              f"{_f(pp, 'hd95_mm', 1)} | {secs:.0f} | {pp.get('n_patients')} |")


def grade(results: Path) -> None:
    print("| method | fusion | patient AUC [95% CI bootstrap] | accuracy | kappa | Brier | slice AUC |")
    print("|---|---|---|---|---|---|---|")
    for m in ("kinet", "early", "radiomics"):
        p = results / "grade_cv" / f"{m}.json"
        if not p.is_file():
            print(f"| {m} | not run | | | | | |")
            continue
        d = json.loads(p.read_text())
        for fusion, r in d["fused"].items():
            pt = r["patient"]
            ci = pt.get("auc_ci95") or [float("nan")] * 2
            sl = r.get("slice", {}).get("auc")
            print(f"| {m} | {fusion} | {pt['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {pt['accuracy']:.3f} | "
                  f"{pt['kappa']:.3f} | {pt['brier']:.3f} | {'' if sl is None else f'{sl:.3f}'} |")


def compare(results: Path) -> dict:
    """DeLong's test (MedGradePredictLib.evaluate.delong_test) of KiNet (Near) against each baseline, same patients."""
    from MedGradePredictLib.evaluate import delong_test

    rows = {}
    for m, key in (("kinet", "p_near"), ("early", "p_near"), ("radiomics", "p_all")):
        p = results / "grade_cv" / f"{m}.json"
        if p.is_file():
            rows[m] = {r["patient_id"]: (r["label"], r[key]) for r in json.loads(p.read_text())["rows"]}
    out = {}
    if "kinet" in rows:
        ids = sorted(rows["kinet"])
        y = [rows["kinet"][i][0] for i in ids]
        for other in ("early", "radiomics"):
            if other in rows and set(rows[other]) == set(ids):
                t = delong_test(y, [rows["kinet"][i][1] for i in ids], [rows[other][i][1] for i in ids])
                out[f"kinet_near_vs_{other}"] = {k: v for k, v in t.items() if not isinstance(v, (list, dict))}
                print(f"KiNet (Near) vs {other}: {out[f'kinet_near_vs_{other}']}")
    return out


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "experiments/results")
    seg(root)
    print()
    grade(root)
    print()
    compare(root)
