"""`medgrade predict` / `medgrade evaluate` on breast inputs (BUS-BRA and BUSI layouts, a single US
image), with a radiomics bundle and with the shipped US model (no --model)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from MedGradeCoreLib.cli import main as medgrade


def _files(name):
    from MedGradeCoreLib.sample_data import fetch_dataset

    return fetch_dataset(name)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """BUS-BRA and BUSI layouts holding only the registered sample images."""
    root = tmp_path_factory.mktemp("breast")
    bb = root / "busbra"
    (bb / "images").mkdir(parents=True)
    (bb / "masks").mkdir()
    ids = set()
    for rel, path in _files("busbra-sample").items():
        if "/images/" in rel or "/masks/" in rel:
            shutil.copy(path, bb / rel.split("/", 1)[1])
            ids.add(path.stem)
        elif rel.endswith("bus_data.csv"):
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
    with open(bb / "bus_data.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["ID"] in ids)
    busi = root / "busi"
    for rel, path in _files("busi-sample").items():
        dst = busi / rel.split("/", 1)[1]
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dst)
    return bb, busi


@pytest.fixture(scope="module")
def radiomics_bundle(layouts, tmp_path_factory):
    from MedGradePredictLib.breast.bundles import save_radiomics_bundle
    from MedGradePredictLib.breast.radiomics_features import RadiomicsSettings, feature_rows
    from MedGradePredictLib.breast.radiomics_model import RadiomicsConfig, fit_final
    from MedGradePredictLib.breast.readers import read_busbra

    s = RadiomicsSettings()
    rows = feature_rows(read_busbra(layouts[0]), "us", s)
    cfg = RadiomicsConfig(k=5)
    model, _ = fit_final(rows, "pathology", cfg)
    return save_radiomics_bundle(model, s, cfg, tmp_path_factory.mktemp("m") / "rad", "breast-rad-test",
                                 {"name": "pathology", "classes": ["benign", "malignant"]}, "us")


def test_predict_busbra_and_evaluate(layouts, radiomics_bundle, tmp_path, capsys):
    bb, _ = layouts
    out = tmp_path / "pred"
    assert medgrade(["predict", str(bb), "--model", str(radiomics_bundle), "--output", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 20 and {"id", "predicted_class", "probability", "probability_benign",
                                "probability_malignant", "label", "model_id"} <= set(rows[0])
    assert all(abs(float(r["probability_benign"]) + float(r["probability_malignant"]) - 1) < 1e-9 for r in rows)
    meta = json.loads((out / "predictions.json").read_text())
    assert meta["layout"] == "BUS-BRA" and "stand-in" in meta["note"]
    ev = tmp_path / "eval"
    assert medgrade(["evaluate", "--predictions", str(out / "predictions.csv"), "--output", str(ev),
                     "--bootstrap", "100"]) == 0
    # two models on the same images: DeLong's test in evaluation.json
    assert medgrade(["predict", str(bb), "--model", str(radiomics_bundle), "--model",
                     "breast-us-radiomics-busbra-busi", "--output", str(tmp_path / "two")]) == 0
    assert medgrade(["evaluate", "--predictions", str(tmp_path / "two" / "predictions.csv"), "--output",
                     str(tmp_path / "ev2"), "--bootstrap", "50"]) == 0
    pair = json.loads((tmp_path / "ev2" / "evaluation.json").read_text())["delong"][0]
    assert pair["n"] == 20 and 0 <= pair["p_value"] <= 1
    report = json.loads((ev / "metrics.json").read_text())
    assert report["metrics"]["n"] == 20 and "stand-in" in report["title"]
    assert (ev / "decision_curve.png").is_file() and (ev / "roc.png").is_file()
    assert "AUC" in capsys.readouterr().out


def test_predict_busi_with_shipped_default_model(layouts, tmp_path):
    _, busi = layouts
    from MedGradePredictLib.breast.bundles import DEFAULT_US_MODEL

    out = tmp_path / "busi"
    assert medgrade(["predict", str(busi), "--output", str(out)]) == 0  # no --model: the shipped US model
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 8 and {r["model_id"] for r in rows} == {DEFAULT_US_MODEL}
    assert json.loads((out / "predictions.json").read_text())["patients"].startswith("BUSI has no patient ids")
    # a single US image with its mask beside it
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(busi / "malignant" / "malignant_2.png", one / "lesion.png")
    shutil.copy(busi / "malignant" / "malignant_2_mask.png", one / "lesion_mask.png")
    assert medgrade(["predict", str(one / "lesion.png"), "--output", str(tmp_path / "single")]) == 0
    single = list(csv.DictReader(open(tmp_path / "single" / "predictions.csv")))
    mine = next(r for r in rows if r["id"] == "malignant_2")
    assert len(single) == 1 and float(single[0]["probability"]) == pytest.approx(float(mine["probability"]), abs=1e-6)


def test_breast_errors_name_the_problem(layouts, radiomics_bundle, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    assert medgrade(["predict", str(empty), "--model", str(radiomics_bundle), "--output", str(tmp_path / "o")]) == 2
    assert "not a breast input" in capsys.readouterr().err
    assert medgrade(["predict", str(empty), "--output", str(tmp_path / "o")]) == 2
    # without --model the default model is chosen by the input, so the input's problem is what is reported
    assert "empty: no images found" in capsys.readouterr().err
