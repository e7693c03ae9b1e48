"""`medgrade models export --onnx [--int8]` (issue 20): the shipped segmentation and grading bundles (whatever is
shipped when the test runs: exported here, never pinned) exported to ONNX are bundles (sha256 of every file,
provenance of the source) and agree with torch on a real case (BraTS-GLI-00001: already co-registered and
skull-stripped, a 24-slice slab through the lesion): Dice >= 0.99 of the masks, grade probabilities within 1e-3
(FP32); dynamic INT8 within the tolerances measured and stated below."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from MedGradeCoreLib.bundle import bundle_sha256, read_manifest  # noqa: E402
from MedGradeCoreLib.case import Case  # noqa: E402
from MedGradeCoreLib.onnx_models import export_bundle  # noqa: E402
from MedGradePredictLib.cascade import DEFAULT_SEG_MODEL  # noqa: E402
from MedGradePredictLib.model_bundle import DEFAULT_GRADING_MODELS, load_grading_bundle  # noqa: E402
from MedGradePredictLib.predict import predict_case  # noqa: E402
from MedGradeSegmentLib.preprocess.slices import sample_slices  # noqa: E402
from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model  # noqa: E402
from MedGradeSegmentLib.segmentation.segment_case import segment_case  # noqa: E402

GRADER = DEFAULT_GRADING_MODELS[0]
# INT8 (dynamic: int8 weights, activations quantised at run time), measured on this slab with the shipped models
# of 2026-12-07 (per-channel weights): mask Dice 0.997; patient probability 0.213 vs 0.204 (torch); single slices
# up to 0.32 apart (the LightGBM head's trees split on features that INT8 moves). After the segmentation model
# was retrained the same day, the full suite on a quiet machine measured 0.577 vs 0.663 (0.086) on
# BraTS-GLI-00001-000. The grader retrained at 1 mm (issue 17, 2026-12-08) is more sensitive: on this slab
# 0.855 vs 0.652 (0.20), single slices up to 0.78 apart; on the 68 CV patients (each fold's model on its own test
# patients, experiments/results/grade_cv_1mm/int8.json) the AUC moved by -0.002 but 4 of 68 decisions changed,
# largest change 0.39: INT8 is not recommended for grading (user guide). Stated tolerance: mask Dice >= 0.95;
# grading patient probability within 0.25, slices within 0.85.
INT8_DICE, INT8_PATIENT, INT8_SLICE = 0.95, 0.25, 0.85


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    return 2.0 * float((x & y).sum()) / max(float(x.sum() + y.sum()), 1.0)


@pytest.fixture(scope="module")
def case(sample) -> Case:
    images = {}
    for seq, name in (("t1c", "t1c"), ("flair", "t2f")):
        image = sitk.ReadImage(str(sample(f"glioma-brats-space/BraTS-GLI-00001-000/BraTS-GLI-00001-000-{name}.nii.gz")),
                               sitk.sitkFloat32)
        images[seq] = image[:, :, 70:94]  # a slab through the lesion
    brain = sitk.Cast(images["t1c"] > 0, sitk.sitkUInt8)
    return Case("BraTS-GLI-00001-000", images, clinical={"age": 50.0, "sex": "F"}, reference="t1c",
                meta={"brain_mask": brain, "search_mask": brain})


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("models")
    return {"root": root,
            "seg": export_bundle(DEFAULT_SEG_MODEL, root),
            "grade": export_bundle(GRADER, root),
            "seg8": export_bundle(DEFAULT_SEG_MODEL, root, int8="dynamic"),
            "grade8": export_bundle(GRADER, root, int8="dynamic")}


@pytest.fixture(scope="module")
def torch_results(case):
    seg = segment_case(case, load_segmentation_model(DEFAULT_SEG_MODEL), case.meta["brain_mask"], "cpu")
    assert sitk.GetArrayViewFromImage(seg.mask).sum() > 500  # the slab holds a lesion
    graded = Case(case.patient_id, case.images, seg.mask, dict(case.clinical), reference="t1c")
    slices = sample_slices(seg.mask, 20)
    return seg, graded, slices, predict_case(load_grading_bundle(GRADER, "cpu"), graded, slices=slices)


def test_an_export_is_a_verified_bundle_naming_its_source(exported):
    from MedGradeCoreLib.model_library import find_model

    for key, source in (("seg", DEFAULT_SEG_MODEL), ("grade", GRADER), ("seg8", DEFAULT_SEG_MODEL)):
        manifest = read_manifest(exported[key], verify=True)
        arch = manifest.architecture
        assert arch["runtime"] == "onnx" and "model.onnx" in manifest.files
        assert arch["source_model"]["model_id"] == source
        assert arch["source_model"]["bundle_sha256"] == bundle_sha256(find_model(source).path)
        assert not any(f.endswith(".safetensors") for f in manifest.files)
    assert read_manifest(exported["seg8"]).architecture["quantization"]["mode"] == "dynamic"
    assert "quantization" not in read_manifest(exported["seg"]).architecture
    assert (exported["seg8"] / "model.onnx").stat().st_size < 0.5 * (exported["seg"] / "model.onnx").stat().st_size
    tampered = exported["grade"] / "model.onnx"
    data = tampered.read_bytes()
    try:
        tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        with pytest.raises(Exception, match="sha256"):
            load_grading_bundle(exported["grade"])
    finally:
        tampered.write_bytes(data)


def test_onnx_agrees_with_torch_on_a_real_case(case, exported, torch_results):
    seg_t, graded, slices, grade_t = torch_results
    seg_o = segment_case(case, load_segmentation_model(exported["seg"]), case.meta["brain_mask"], "cpu")
    assert _dice(seg_t.mask, seg_o.mask) >= 0.99
    assert seg_o.info["model_id"] == f"{DEFAULT_SEG_MODEL}-onnx"
    grade_o = predict_case(load_grading_bundle(exported["grade"]), graded, slices=slices)
    np.testing.assert_allclose(grade_o.slice_probabilities, grade_t.slice_probabilities, atol=1e-3)
    assert abs(grade_o.probability - grade_t.probability) <= 1e-3
    assert grade_o.predicted_level == grade_t.predicted_level
    ht, ho = (sitk.GetArrayViewFromImage(g.heatmap) for g in (grade_t, grade_o))  # Grad-CAM inside the graph
    assert np.abs(ht - ho).max() < 1e-2 and ht.max() > 0.5


def test_int8_agrees_within_the_stated_tolerance(case, exported, torch_results):
    seg_t, graded, slices, grade_t = torch_results
    seg_8 = segment_case(case, load_segmentation_model(exported["seg8"]), case.meta["brain_mask"], "cpu")
    dice = _dice(seg_t.mask, seg_8.mask)
    grade_8 = predict_case(load_grading_bundle(exported["grade8"]), graded, slices=slices)
    diff = float(np.abs(np.subtract(grade_8.slice_probabilities, grade_t.slice_probabilities)).max())
    print(f"INT8 dynamic: Dice {dice:.4f}, max slice probability difference {diff:.4f}, patient "
          f"{grade_8.probability:.4f} vs {grade_t.probability:.4f}")
    assert dice >= INT8_DICE and diff <= INT8_SLICE
    assert abs(grade_8.probability - grade_t.probability) <= INT8_PATIENT


def test_models_export_command(exported, tmp_path):
    out = tmp_path / "seg-export"
    run = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "models", "--root", str(exported["root"]),
                          "export", DEFAULT_SEG_MODEL, "--onnx", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert read_manifest(out).architecture["runtime"] == "onnx" and str(out) in run.stdout
    again = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "models", "--root", str(exported["root"]),
                            "export", f"{DEFAULT_SEG_MODEL}-onnx", "--onnx"], capture_output=True, text=True)
    assert again.returncode != 0 and again.stderr.strip().startswith("error:") and "already an ONNX" in again.stderr
    listed = json.loads(subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "models", "--root",
                                        str(exported["root"]), "list", "--json"], capture_output=True,
                                       text=True).stdout)
    assert {f"{DEFAULT_SEG_MODEL}-onnx", f"{GRADER}-onnx"} <= {e["model_id"] for e in listed}


_NO_TORCH = """
import sys
import SimpleITK as sitk
from MedGradeCoreLib.case import Case
from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model
from MedGradeSegmentLib.segmentation.segment_case import segment_case
images = {s: sitk.ReadImage(p, sitk.sitkFloat32)[:, :, 80:84] for s, p in zip(("t1c", "flair"), sys.argv[2:4])}
result = segment_case(Case("x", images, reference="t1c"), load_segmentation_model(sys.argv[1]), None, "cpu")
print(int(sitk.GetArrayViewFromImage(result.mask).sum()), "torch" in sys.modules)
"""


def test_an_onnx_segmentation_runs_without_importing_torch(sample, exported):
    # what the Segment panel and `medgrade segment` do with an exported model: torch is never imported
    paths = [str(sample(f"glioma-brats-space/BraTS-GLI-00001-000/BraTS-GLI-00001-000-{n}.nii.gz")) for n in ("t1c", "t2f")]
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, str(exported["seg"]), *paths], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    voxels, torch_loaded = run.stdout.split()
    assert int(voxels) > 0 and torch_loaded == "False"


def test_a_model_runs_as_its_fp32_export_when_none_is_named(tmp_path):
    from MedGradeCoreLib.bundle import ModelManifest, write_bundle
    from MedGradeCoreLib.model_library import list_models
    from MedGradeCoreLib.onnx_models import fast_variant, prefer_exports

    (tmp_path / "w").write_text("x")
    for model_id, arch in (("m", {"name": "kinet"}),
                           ("m-onnx", {"name": "kinet", "runtime": "onnx", "source_model": {"model_id": "m"}}),
                           ("m-onnx-int8-dynamic", {"name": "kinet", "runtime": "onnx", "quantization": {},
                                                    "source_model": {"model_id": "m"}}),
                           ("other", {"name": "kinet"})):
        write_bundle(tmp_path / "lib" / model_id, ModelManifest(model_id, "grading", arch, ["t1c"]),
                     {"w.txt": tmp_path / "w"})
    entries = [e for e in list_models(tmp_path / "lib", include_bundled=False)]
    assert [e.model_id for e in prefer_exports(entries)] == ["m-onnx", "other"]  # the source once, as its export
    by_id = {e.model_id: e for e in entries}
    assert fast_variant(by_id["m"], entries).model_id == "m-onnx"
    assert fast_variant(by_id["other"], entries).model_id == "other"


def test_static_int8_is_calibrated_on_cohort_slices(case, torch_results, tmp_path):
    from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed

    config = PreprocessConfig(skull_strip=False, reg_skip_same_grid=True, check_sequences=False, n_slices=4)
    slab = Case(case.patient_id, {s: img[:, :, 6:18] for s, img in case.images.items()}, reference="t1c")
    write_preprocessed(preprocess_case(slab, config), tmp_path / "cohort", name="slab")
    folder = export_bundle(DEFAULT_SEG_MODEL, tmp_path / "lib", int8="static", calibration=tmp_path / "cohort")
    quant = read_manifest(folder).architecture["quantization"]
    assert quant["mode"] == "static" and quant["calibration"]["batches"] >= 1
    seg_t = torch_results[0]
    seg_s = segment_case(case, load_segmentation_model(folder), case.meta["brain_mask"], "cpu")
    dice = _dice(seg_t.mask, seg_s.mask)
    print(f"INT8 static (calibrated on {quant['calibration']['batches']} batches): Dice {dice:.4f}")
    assert dice >= INT8_DICE


# Torch and MONAI refused by an import hook that also records every attempt (a caught ImportError, e.g. looking for
# a GPU, counts too): what a Slicer panel or `medgrade run` does with ONNX models imports neither.
_REFUSING = """
import importlib.abc, sys
tried = []
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "monai"):
            tried.append(name)
            raise ImportError(f"{name} is refused: ONNX models run without it")
        return None
sys.meta_path.insert(0, Refuse())
from MedGradeCoreLib.cli import main
rc = main(sys.argv[1:])
print("REFUSED", ",".join(tried) or "-")
sys.exit(rc)
"""


def _refusing(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _REFUSING, *args], capture_output=True, text=True)


def test_onnx_run_predict_and_segment_with_torch_and_monai_refused(case, exported, tmp_path):
    from MedGradePredictLib.cascade import CascadeSettings, run_case
    from MedGradePredictLib.results_io import read_results
    from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed

    config = PreprocessConfig(skull_strip=False, reg_skip_same_grid=True, check_sequences=False)
    write_preprocessed(preprocess_case(Case(case.patient_id, case.images, reference="t1c"), config), tmp_path,
                       name="slab")
    folder = tmp_path / "slab"
    ran = _refusing("run", str(folder), "--output", str(tmp_path / "onnx"), "--seg-model", str(exported["seg"]),
                    "--model", str(exported["grade"]), "--no-scene", "--age", "50", "--sex", "F")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "REFUSED -" in ran.stdout, ran.stdout[-500:]
    onnx_dir = tmp_path / "onnx" / "slab"
    torch_run = run_case(folder, tmp_path / "torch", CascadeSettings(scene=False, device="cpu", grade_models=[GRADER],
                                                                     clinical={"age": 50.0, "sex": "F"}))
    torch_dir = torch_run.folder
    seg = [sitk.ReadImage(str(d / "segmentation" / "lesion_mask.nii.gz")) for d in (torch_dir, onnx_dir)]
    assert _dice(*seg) >= 0.99
    (g_t,), _ = read_results(torch_dir / "grading" / GRADER)
    (g_o,), _ = read_results(onnx_dir / "grading" / f"{GRADER}-onnx")
    assert abs(g_o.probability - g_t.probability) <= 1e-3
    np.testing.assert_allclose(g_o.slice_probabilities, g_t.slice_probabilities, atol=1e-3)
    ht, ho = (sitk.GetArrayViewFromImage(g.heatmap) for g in (g_t, g_o))  # numpy Grad-CAM scaling vs MONAI's
    assert np.abs(ht - ho).max() < 1e-2 and ht.max() > 0.5
    assert (onnx_dir / "report.html").is_file()
    predicted = _refusing("predict", str(folder), "--model", str(exported["grade"]), "--mask",
                          str(onnx_dir / "segmentation" / "lesion_mask.nii.gz"), "--output", str(tmp_path / "pred"),
                          "--heatmap", "--age", "50", "--sex", "F")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert "REFUSED -" in predicted.stdout
    (g_p,), _ = read_results(tmp_path / "pred")
    assert abs(g_p.probability - g_o.probability) <= 1e-6 and g_p.heatmap is not None
    segmented = _refusing("segment", str(folder), "--model", str(exported["seg"]), "--output", str(tmp_path / "seg"))
    assert segmented.returncode == 0, segmented.stderr[-2000:]
    assert "REFUSED -" in segmented.stdout
    assert sitk.GetArrayViewFromImage(sitk.ReadImage(str(tmp_path / "seg" / "lesion_mask.nii.gz"))).any()
