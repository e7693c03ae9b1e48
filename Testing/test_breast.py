"""Breast grading on real images: readers, radiomics equal to a direct pyradiomics call, the
peritumoral ring, feature selection inside the folds, and the late-fusion model with any subset of
modalities (invariant to an absent modality's tensor)."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedGradePredictLib.breast.case import BreastCase, BreastImage, encode_label, mask_from_box
from MedGradePredictLib.breast.radiomics_features import (RadiomicsSettings, feature_rows, image_features,
                                                           peritumoral_ring, read_feature_table, write_feature_table)
from MedGradePredictLib.breast.readers import (load_breast_input, load_image_with_roi, read_breast_case,
                                               read_busbra, read_busi)
from MedGradeCoreLib.errors import InputError

BUSBRA_IDS = {"bus_0001-l", "bus_0001-r", "bus_0002-l", "bus_0002-r", "bus_0003-l", "bus_0003-r", "bus_0358-l",
              "bus_0358-r", "bus_0359-l", "bus_0359-r", "bus_0360-l", "bus_0360-r", "bus_0848-l", "bus_0848-r",
              "bus_0849-l", "bus_0849-r", "bus_0856-l", "bus_0856-r", "bus_1009-l", "bus_1009-r"}
BUSI_IDS = {"benign_1", "benign_2", "benign_3", "benign_4", "malignant_2", "malignant_3", "malignant_5", "malignant_6"}


@pytest.fixture(scope="module")
def busbra_root():
    from MedGradeCoreLib.sample_data import fetch_dataset

    files = fetch_dataset("busbra-sample")
    return next(p for k, p in files.items() if k.endswith("bus_data.csv")).parent


@pytest.fixture(scope="module")
def busi_root():
    from MedGradeCoreLib.sample_data import fetch_dataset

    files = fetch_dataset("busi-sample")
    return next(p for k, p in files.items() if k.endswith("benign_1.png")).parents[1]


@pytest.fixture(scope="module")
def busbra_cases(busbra_root):
    return read_busbra(busbra_root, BUSBRA_IDS)


def _direct(image: sitk.Image, mask: sitk.Image, two_d: bool) -> dict[str, float]:
    """pyradiomics with the settings written out here (not the product's helpers): 32 bins, label 1, shape +
    first order + the five texture classes; a single-slice image per slice (force2D over axis 0)."""
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ex = featureextractor.RadiomicsFeatureExtractor(binCount=32, label=1, force2D=two_d, force2Ddimension=0,
                                                    minimumROIDimensions=2 if two_d else 3)
    ex.disableAllFeatures()
    for c in ("shape2D" if two_d else "shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"):
        ex.enableFeatureClassByName(c)
    return {k: float(v) for k, v in ex.execute(image, mask).items() if not k.startswith("diagnostics")}


def test_features_equal_direct_pyradiomics_breast1_and_busbra(sample, busbra_root):
    s = RadiomicsSettings()
    img_p, lab_p = sample("breast-mr/breast1_image.nrrd"), sample("breast-mr/breast1_label.nrrd")
    mri = load_image_with_roi(img_p, lab_p)
    ours = image_features(mri, s)
    direct = _direct(sitk.ReadImage(str(img_p)), sitk.ReadImage(str(lab_p)), False)
    assert len(direct) > 90 and "original_shape_MeshVolume" in direct
    for k, v in direct.items():
        assert ours[f"roi_{k}"] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    # one BUS-BRA image: pyradiomics on the PNG as a single-slice volume (force2D over the slice axis)
    us = load_image_with_roi(busbra_root / "images" / "bus_0001-l.png", busbra_root / "masks" / "bus_0001-l.png")
    ours = image_features(us, s)
    png = sitk.JoinSeries(sitk.ReadImage(str(busbra_root / "images" / "bus_0001-l.png")))
    mask = sitk.JoinSeries(sitk.Cast(sitk.ReadImage(str(busbra_root / "masks" / "bus_0001-l.png")) > 0, sitk.sitkUInt8))
    direct = _direct(png, mask, True)
    assert "original_shape2D_Perimeter" in direct
    for k, v in direct.items():
        assert ours[f"roi_{k}"] == pytest.approx(v, rel=1e-6, abs=1e-9), k
    assert any(k.startswith("ring_original_glcm") for k in ours)


def test_ring_outside_lesion_inside_image(sample, busbra_root):
    mri = load_image_with_roi(sample("breast-mr/breast1_image.nrrd"), sample("breast-mr/breast1_label.nrrd"))
    ring = peritumoral_ring(mri.roi, 3.0, True)
    r, roi = sitk.GetArrayFromImage(ring) > 0, sitk.GetArrayFromImage(mri.roi) > 0
    assert r.any() and not (r & roi).any()
    assert ring.GetSize() == mri.image.GetSize() and ring.GetOrigin() == mri.image.GetOrigin()
    dist = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(mri.roi, insideIsPositive=False, useImageSpacing=True,
                                                               squaredDistance=False))
    assert dist[r].max() <= 3.0 and dist[r].min() > 0
    assert not ((dist > 0) & (dist <= 3.0) & ~r).any()  # every pixel within 3 mm is in the ring
    # no spacing (PNG): the width is in pixels and said so
    us = load_image_with_roi(busbra_root / "images" / "bus_0002-l.png", busbra_root / "masks" / "bus_0002-l.png")
    assert not us.spacing_known
    rows = feature_rows([BreastCase("c", us={"x": us})], "us", RadiomicsSettings())
    assert rows[0].ring == "3 pixels (no spacing)"
    ring2 = sitk.GetArrayFromImage(peritumoral_ring(us.roi, 3, False))[0] > 0
    assert ring2.any() and not (ring2 & us.roi_array()[0]).any() and ring2.shape == us.roi_array()[0].shape


def test_readers_busbra_busi_case_folder_and_errors(busbra_cases, busi_root, sample, tmp_path):
    assert len(busbra_cases) == 10 and all(len(c.us) == 2 for c in busbra_cases)
    c1 = next(c for c in busbra_cases if c.case_id == "busbra:0001")
    assert c1.labels["pathology"] == "malignant" and c1.site.startswith("GE Logiq 7")
    assert encode_label("birads3", c1.us["bus_0001-l"].labels) == 1  # BI-RADS 4
    busi = read_busi(busi_root, ids=BUSI_IDS)
    assert {c.labels["pathology"] for c in busi} == {"benign", "malignant"} and len(busi) == 8
    assert all(c.patient_id.startswith("busi:") and c.us[c.case_id].roi is not None for c in busi)
    # a breast case folder with MG (box ROI), US (mask) and MRI (NRRD + label)
    case_dir = tmp_path / "caseA"
    case_dir.mkdir()
    mg_png = sample(next(iter(_ds("ddsm-mlo-sample"))))
    shutil.copy(mg_png, case_dir / "mg_RMLO.png")
    (case_dir / "mg_RMLO_box.json").write_text(json.dumps({"box": [100, 300, 180, 380]}))
    shutil.copy(busi_root / "benign" / "benign_1.png", case_dir / "us_1.png")
    shutil.copy(busi_root / "benign" / "benign_1_mask.png", case_dir / "us_1_mask.png")
    shutil.copy(sample("breast-mr/breast1_image.nrrd"), case_dir / "mri_post1.nrrd")
    shutil.copy(sample("breast-mr/breast1_label.nrrd"), case_dir / "mri_mask.nrrd")
    (case_dir / "case.json").write_text(json.dumps({"patient_id": "P1", "labels": {"pathology": "benign"},
                                                    "clinical": {"age": 51}, "subtype": "luminal A"}))
    case = read_breast_case(case_dir)
    assert case.modalities == ["mg", "us", "mri"] and case.patient_id == "P1" and case.subtype == "luminal A"
    assert case.mg["RMLO"].is_2d and int(sitk.GetArrayViewFromImage(case.mg["RMLO"].roi).sum()) == 81 * 81
    assert not case.mri["post1"].is_2d and case.mri["post1"].roi is not None
    layout, cases = load_breast_input(tmp_path)
    assert layout == "breast cohort" and len(cases) == 1
    (case_dir / "us_1_mask.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="us_1_mask.png"):
        read_breast_case(case_dir)
    with pytest.raises(InputError, match="outside the image"):
        mask_from_box(case.mg["RMLO"].image, [0, 0, 5000, 10])


def _ds(name):
    from MedGradeCoreLib.sample_data import dataset_files

    return [f.path for f in dataset_files(name)]


def test_feature_cache_round_trip(busbra_cases, tmp_path):
    s = RadiomicsSettings()
    rows = feature_rows(busbra_cases[:2], "us", s)
    write_feature_table(rows, tmp_path / "f.csv", s)
    back = read_feature_table(tmp_path / "f.csv", s)
    assert [r.id for r in back] == [r.id for r in rows] and back[0].features == rows[0].features
    with pytest.raises(InputError, match="other radiomics settings"):
        read_feature_table(tmp_path / "f.csv", RadiomicsSettings(bin_count=16))


# ----------------------------------------------------------------------------- radiomics model
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from MedGradePredictLib.breast.radiomics_model import (RadiomicsConfig, RadiomicsModel, cross_validate,  # noqa: E402
                                                       design_matrix, fit_final, model_matrix)


class LeakySelector(BaseEstimator, TransformerMixin):
    """A selector that ranks features on ALL rows (validation folds included) -- the bug to catch."""

    def __init__(self, X_all=None, y_all=None, k=10):
        self.X_all, self.y_all, self.k = X_all, y_all, k

    def fit(self, X, y=None):
        Z = (self.X_all - self.X_all.mean(0)) / self.X_all.std(0)
        corr = np.abs(Z.T @ (self.y_all - self.y_all.mean()))
        self.support_ = np.zeros(X.shape[1], bool)
        self.support_[np.argsort(-corr)[: self.k]] = True
        return self

    def transform(self, X):
        return X[:, self.support_]

    def get_support(self):
        return self.support_


def assert_no_selection_leak(selector=None) -> float:
    """On pure-noise features with random labels an honest fold-internal selection gives chance-level
    out-of-fold AUC; selection that saw the validation folds does not."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 400))
    y = np.tile([0, 1], 40)
    groups = np.repeat(np.arange(40), 2).astype(str)  # two images per patient, as in BUS-BRA
    prob, folds = cross_validate(X, y, groups, RadiomicsConfig(k=10, correlation=1.0), selector=selector)
    for f in set(folds):  # folds never share a patient
        assert not set(groups[folds == f]) & set(groups[folds != f])
    auc = roc_auc_score(y, prob[:, 1])
    assert auc < 0.7, f"out-of-fold AUC {auc:.2f} on noise: feature selection saw the validation fold"
    return auc


def test_feature_selection_never_sees_the_validation_fold():
    assert_no_selection_leak()  # the product's L1 selection inside each training fold
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 400))
    y = np.tile([0, 1], 40)
    with pytest.raises(AssertionError, match="saw the validation fold"):
        assert_no_selection_leak(LeakySelector(X, y))


@pytest.fixture(scope="module")
def busbra_rows(busbra_cases):
    return feature_rows(busbra_cases, "us", RadiomicsSettings())


@pytest.mark.parametrize("classifier", ["lr", "lightgbm"])
def test_radiomics_model_export_bundle_and_predict(busbra_rows, busbra_cases, classifier, tmp_path):
    from MedGradePredictLib.breast.bundles import load_breast_predictor, save_radiomics_bundle

    cfg = RadiomicsConfig(k=5, classifier=classifier)
    model, pipe = fit_final(busbra_rows, "pathology", cfg)
    X, y, cols, _, kept = design_matrix(busbra_rows, "pathology")
    assert np.allclose(model.predict_proba(model_matrix(model, kept)), pipe.predict_proba(X), atol=1e-9)
    if classifier == "lr":
        table = model.coefficient_table()
        assert {r["feature"] for r in table[:-1]} == set(model.columns) and table[-1]["feature"] == "(intercept)"
        assert all(r["odds_ratio_per_sd"] == pytest.approx(np.exp(r["coefficient"])) for r in table)
    folder = save_radiomics_bundle(model, RadiomicsSettings(), cfg, tmp_path / "m", "rad-test",
                                   {"name": "pathology", "classes": ["benign", "malignant"]}, "us")
    pred = load_breast_predictor(folder)
    rows = pred.predict(busbra_cases[:2])
    assert len(rows) == 4 and rows[0]["probability"] == pytest.approx(rows[0]["probability_malignant"])
    assert rows[0]["ring"] == "3 pixels (no spacing)" and rows[0]["predicted_class"] in ("benign", "malignant")
    assert RadiomicsModel.load(folder / "radiomics_model.json").columns == model.columns


# ----------------------------------------------------------------------------- late fusion
@pytest.fixture(scope="module")
def multimodal_cases(busbra_cases, sample):
    """Six cases with different modality subsets, built from real images (labels: plumbing only)."""
    from MedGradePredictLib.breast.readers import load_image_with_roi, read_breast_image

    mg_img, _ = read_breast_image(sample(_ds("ddsm-mlo-sample")[0]))
    mg = BreastImage(mg_img, mask_from_box(mg_img, [100, 300, 180, 380]), "ddsm", False)
    mri = load_image_with_roi(sample("breast-mr/breast1_image.nrrd"), sample("breast-mr/breast1_label.nrrd"))
    us = [next(iter(c.us.values())) for c in busbra_cases[:6]]
    subsets = [("us", "mg", "mri"), ("us",), ("mg", "mri"), ("us", "mri"), ("mg",), ("mri",)]
    cases = []
    for i, mods in enumerate(subsets):
        c = BreastCase(f"case{i}", labels={"pathology": ["benign", "malignant"][i % 2]})
        if "us" in mods:
            c.us["u"] = BreastImage(us[i].image, us[i].roi, us[i].source, False)
        if "mg" in mods:
            c.mg["RMLO"] = mg
        if "mri" in mods:
            c.mri["post1"] = mri
        cases.append(c)
    return cases


def _kind(tmp_path, cases, **extra):
    from MedGradeTrainLib.kinds.breast_fusion import BreastFusionKind

    settings = {"task": "pathology", "branches": [
        {"modality": "us", "size": [32, 32], "widths": [4, 8, 8, 8]},
        {"modality": "mg", "size": [32, 32], "widths": [4, 8, 8, 8]},
        {"modality": "mri", "phases": ["post1"], "size": [8, 24, 24], "widths": [4, 8, 8, 8]}], **extra}
    return BreastFusionKind(settings, tmp_path, cases=cases)


def test_fusion_any_subset_trains_predicts_and_ignores_absent_tensors(multimodal_cases, tmp_path):
    from torch.utils.data import DataLoader

    from MedGradePredictLib.breast.bundles import load_breast_predictor

    torch.manual_seed(0)
    kind = _kind(tmp_path, multimodal_cases, loss="focal", oversample=True, modality_dropout=0.3, freeze_steps=1)
    pats = [p.patient_id for p in kind.patients()]
    assert len(pats) == 6
    split = kind.split_data("final", pats, pats)
    net = kind.build_model(split)
    opt = torch.optim.AdamW(net.parameters(), 1e-2)
    branch0 = {k: v.clone() for k, v in net.branches["us"].state_dict().items()}
    net.train()
    for step in range(3):
        batch = next(iter(DataLoader(split.train, batch_size=len(split.train))))
        loss = kind.training_step(net, batch, torch.device("cpu"))["loss"]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 0:  # stage 1: branches frozen
            assert all(torch.equal(v, net.branches["us"].state_dict()[k]) for k, v in branch0.items())
    assert not torch.equal(branch0["conv1.weight"], net.branches["us"].state_dict()["conv1.weight"])
    metrics = kind.validate(net, split, torch.device("cpu"))
    assert 0 <= metrics["val_auc"] <= 1
    # invariance: an absent modality's tensor contents never reach the output
    net.eval()
    inputs, present = {}, []
    for i, c in enumerate(split.val.cache):
        present.append(c[1])
    present = torch.stack(present)
    inputs = {m: torch.stack([torch.nan_to_num(c[0][m]) for c in split.val.cache]) for m in ("us", "mg", "mri")}
    ref = net(inputs, present)
    noisy = {m: torch.where(present[:, i].reshape(-1, *[1] * (v.dim() - 1)), v, torch.randn_like(v) * 100)
             for i, (m, v) in enumerate(inputs.items())}
    assert torch.equal(net(noisy, present), ref)
    # the absent modality is masked, not read as zeros: zero data of a present modality changes the output
    zeroed = dict(inputs, us=torch.zeros_like(inputs["us"]))
    assert not torch.allclose(net(zeroed, present)[present[:, 0]], ref[present[:, 0]])
    folder = kind.write_bundle(net, split, tmp_path / "bundles", {"run_id": "t"})
    pred = load_breast_predictor(folder)
    rows = pred.predict(multimodal_cases)
    assert [r["modalities"] for r in rows] == ["mg+mri+us", "us", "mg+mri", "mri+us", "mg", "mri"]
    p = torch.softmax(ref, 1)[:, 1].detach().numpy()
    assert np.allclose([r["probability"] for r in rows], p, atol=1e-5)
    contrib = pred.contributions(multimodal_cases[:1])[0]
    assert sum(contrib[f"weight_{m}"] for m in ("us", "mg", "mri")) == pytest.approx(3.0)
    assert "probability_without_us" in contrib
    from MedGradePredictLib.breast.gradcam import breast_gradcam

    maps = {h["modality"]: h["heatmap"] for h in breast_gradcam(pred, multimodal_cases[:1])}
    case0 = multimodal_cases[0]
    assert set(maps) == {"us", "mg", "mri"}
    assert maps["mri"].GetSize() == case0.mri["post1"].image.GetSize()
    assert maps["mg"].GetSize() == case0.mg["RMLO"].image.GetSize()
    assert maps["mri"].GetSpacing() == case0.mri["post1"].image.GetSpacing()


def test_single_modality_model_is_the_same_code(busbra_cases, tmp_path):
    from MedGradeTrainLib.kinds.breast_fusion import BreastFusionKind

    settings = {"task": "birads3", "branches": [{"modality": "us", "size": [32, 32], "widths": [4, 8, 8, 8]}]}
    kind = BreastFusionKind(settings, tmp_path, cases=busbra_cases)
    pats = [p.patient_id for p in kind.patients()]
    with pytest.raises(InputError, match="a class has no training sample"):  # class weights need every class
        kind.split_data("fold0", pats[:7], pats[7:])
    kind = BreastFusionKind(dict(settings, class_weights=False), tmp_path, cases=busbra_cases)
    split = kind.split_data("fold0", pats[:7], pats[7:])
    net = kind.build_model(split)
    assert len(net.branches) == 1 and net.head[-1].out_features == 3
    with pytest.raises(InputError, match="unknown breast-fusion setting"):
        BreastFusionKind({"task": "pathology", "bogus": 1}, tmp_path, cases=busbra_cases)


def test_scene_case_and_results_round_trip(slicer_app, busi_root, multimodal_cases, tmp_path):
    """Scene volumes + Segment-Editor ROIs -> breast case folder -> `medgrade predict --heatmap` ->
    result table, contributions table and Grad-CAM volumes in the scene."""
    from MedGradePredictLib.breast.scene_breast import load_breast_results, write_case_from_scene
    from MedGradeCoreLib.scene import mask_to_segmentation_node, sitk_to_volume_node
    from MedGradeCoreLib.cli import main as medgrade

    us = load_image_with_roi(busi_root / "malignant" / "malignant_2.png", busi_root / "malignant" / "malignant_2_mask.png")
    scene = slicer_app.scene
    vol = sitk_to_volume_node(scene, us.image, "US lesion")
    seg = mask_to_segmentation_node(scene, us.roi, "US ROI", reference_node=vol)
    folder = write_case_from_scene({"us": (vol, seg)}, tmp_path / "case", {"patient_id": "P9"})
    case = read_breast_case(folder)
    back = next(iter(case.us.values()))
    assert case.patient_id == "P9" and back.is_2d
    assert np.array_equal(back.roi_array(), us.roi_array())
    assert np.allclose(sitk.GetArrayViewFromImage(back.image), sitk.GetArrayViewFromImage(us.image))
    # a tiny fusion bundle (US + MG branches) from the runner kind, then the CLI with --heatmap
    kind = _kind(tmp_path, multimodal_cases)
    pats = [p.patient_id for p in kind.patients()]
    split = kind.split_data("final", pats, [])
    bundle = kind.write_bundle(kind.build_model(split), split, tmp_path / "b", {"run_id": "t"})
    out = tmp_path / "out"
    assert medgrade(["predict", str(folder), "--model", str(bundle), "--output", str(out), "--heatmap"]) == 0
    nodes = load_breast_results(scene, out)
    assert nodes["table"].GetTable().GetNumberOfRows() == 1
    assert len(nodes["contributions"]) == 1 and len(nodes["heatmaps"]) == 1
    heat = nodes["heatmaps"][0]
    assert heat.GetImageData().GetDimensions() == (us.image.GetSize()[0], us.image.GetSize()[1], 1)


def test_branch_init_from_local_weights_and_clinical_columns(busbra_rows, tmp_path):
    from MedGradePredictLib.breast.fusion_net import BranchSpec, LateFusionNet, load_branch_weights
    from MedGradeCoreLib.bundle import save_state_dict

    spec = [BranchSpec("us", size=[32, 32], widths=[4, 8, 8, 8])]
    donor = LateFusionNet(spec, 2)
    save_state_dict({f"encoder.{k}": v for k, v in donor.branches["us"].state_dict().items()}, tmp_path / "enc.safetensors")
    net = LateFusionNet(spec, 2)
    info = load_branch_weights(net, "us", tmp_path / "enc.safetensors")
    assert info["matched"] == info["branch_tensors"]
    assert all(torch.equal(v, donor.branches["us"].state_dict()[k]) for k, v in net.branches["us"].state_dict().items())
    save_state_dict({"other.weight": torch.zeros(3, 3)}, tmp_path / "other.safetensors")
    with pytest.raises(InputError, match="no tensor of this file fits the us branch"):
        load_branch_weights(net, "us", tmp_path / "other.safetensors")
    # an optional clinical column joins the radiomics columns (kept when selected)
    import dataclasses

    rows = [dataclasses.replace(r, clinical={"age": 40 + 10 * (r.labels["pathology"] == "malignant") + i % 3})
            for i, r in enumerate(busbra_rows)]
    X, y, cols, _, _ = design_matrix(rows, "pathology", ["age"])
    assert cols[-1] == "clinical_age" and X.shape[1] == len(rows[0].features) + 1
    model, _ = fit_final(rows, "pathology", RadiomicsConfig(k=3, clinical_columns=["age"]))
    assert "clinical_age" in model.columns


def test_fusion_kind_through_the_runner(busbra_cases, tmp_path):
    """2 patient-level folds + final fit through MedGradeTrainLib.runner; the bundle predicts."""
    from MedGradePredictLib.breast.bundles import load_breast_predictor
    from MedGradeTrainLib.kinds.breast_fusion import BreastFusionKind
    from MedGradeTrainLib.runner import run_training

    settings = {"task": "pathology", "branches": [{"modality": "us", "size": [32, 32], "widths": [4, 8, 8, 8]}],
                "model_id": "breast-us-runner-test"}
    cfg = {"kind": {"name": "breast-fusion", **settings}, "seed": 0, "split": {"mode": "kfold", "folds": 2},
           "train": {"epochs": 1, "batch_size": 8, "amp": False, "channels_last": False, "device": "cpu",
                     "restore_best": False}, "final_fit": True, "register": False}
    result = run_training(cfg, tmp_path / "run", kind=BreastFusionKind(settings, tmp_path / "run", cases=busbra_cases),
                          stdout=None)
    oof = result.summary["out_of_fold"]
    assert oof["n"] == 20 and result.summary["stand_in_task"].startswith("benign vs malignant")
    for s in result.splits[:2]:  # folds never share a patient
        assert not set(s["train_patients"]) & set(s["val_patients"])
    rows = load_breast_predictor(result.bundle).predict(busbra_cases[:1])
    assert len(rows) == 2 and rows[0]["model_id"] == "breast-us-runner-test"


def _us_dicom(png, path, region_cm: float | None, pixel_spacing: float | None):
    """A real US image (BUS-BRA PNG) as a DICOM file, with US regions (cm) or PixelSpacing (mm)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(png))).astype(np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = UltrasoundImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID, "US"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if region_cm:
        r = Dataset()
        r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = 3
        r.PhysicalDeltaX = r.PhysicalDeltaY = region_cm
        ds.SequenceOfUltrasoundRegions = [r]
    if pixel_spacing:
        ds.PixelSpacing = [pixel_spacing, pixel_spacing]
    ds.PixelData = arr.tobytes()
    pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    return arr


def test_dicom_and_jpeg_us_images(busbra_root, tmp_path):
    from MedGradePredictLib.breast.readers import read_breast_image

    png = busbra_root / "images" / "bus_0003-l.png"
    arr = _us_dicom(png, tmp_path / "us.dcm", 0.01, None)  # 0.1 mm pixels from the US region
    img, known = read_breast_image(tmp_path / "us.dcm")
    assert known and img.GetSpacing()[:2] == pytest.approx((0.1, 0.1)) and img.GetSize()[2] == 1
    assert np.array_equal(sitk.GetArrayViewFromImage(img)[0], arr)
    _us_dicom(png, tmp_path / "mg.dcm", None, 0.07)
    img, known = read_breast_image(tmp_path / "mg.dcm")
    assert known and img.GetSpacing()[:2] == pytest.approx((0.07, 0.07))
    _us_dicom(png, tmp_path / "plain.dcm", None, None)
    assert read_breast_image(tmp_path / "plain.dcm")[1] is False  # sizes in pixels, said in the output
    sitk.WriteImage(sitk.ReadImage(str(png)), str(tmp_path / "us.jpg"))
    img, known = read_breast_image(tmp_path / "us.jpg")
    assert not known and img.GetSize() == (arr.shape[1], arr.shape[0], 1)
    (tmp_path / "bad.dcm").write_bytes(b"DICM garbage")
    with pytest.raises(InputError, match="bad.dcm"):
        read_breast_image(tmp_path / "bad.dcm")
