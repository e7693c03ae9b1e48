"""Issue 18, items 5, 6, 7, 10, 11, 14, 20, 21, 22: bundles are accepted only when their kind's loader loads
them; stage outputs are committed together and are up to date only with the recorded content; text is never
mathtext; a stray file cannot make ``save-correction`` spin; the deep breast model refuses what the radiomics
model refuses; and the Slurm helpers neither rewrite user paths nor trace back nor count a partial folder."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.cli import main
from MedGradeCoreLib.errors import BundleError, InputError

PREDICT_MODELS = Path(__file__).resolve().parents[1] / "MedGradePredict" / "MedGradePredictLib" / "bundled_models"


# --- 5: models import loads the bundle with its kind's loader ---------------------------------------
def _relabelled(tmp_path: Path, src: str, **changes) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(PREDICT_MODELS / src, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(changes)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("changes, message", [
    ({"kind": "grading", "inputs": ["t1c", "flair"], "model_id": "breast-as-grading"}, "not a usable 'grading' model"),
    ({"kind": "mystery", "model_id": "mystery-model"}, "unknown model kind 'mystery'"),
])
def test_models_import_refuses_a_bundle_its_kind_cannot_load(tmp_path, capsys, changes, message):
    from MedGradeCoreLib.model_library import import_bundle, list_models

    bundle = _relabelled(tmp_path, "breast-us-fusion-busbra-busi", **changes)
    lib = tmp_path / "lib"
    with pytest.raises(BundleError, match=message):
        import_bundle(bundle, lib)
    assert not lib.exists() or not [e for e in list_models(lib, include_bundled=False)]
    assert not lib.exists() or sorted(p.name for p in lib.iterdir()) == []
    assert main(["models", "--root", str(lib), "import", str(bundle)]) == 2
    assert message in capsys.readouterr().err


def test_models_import_accepts_a_bundle_that_loads(tmp_path):
    from MedGradeCoreLib.model_library import import_bundle

    from MedGradeCoreLib.bundle import zip_bundle

    entry = import_bundle(_relabelled(tmp_path, "breast-us-fusion-busbra-busi", model_id="fusion-copy"),
                          tmp_path / "lib")
    assert entry.model_id == "fusion-copy" and Path(entry.path).is_dir()
    bad = zip_bundle(_relabelled(tmp_path / "z", "breast-us-fusion-busbra-busi", model_id="zipped", kind="grading",
                                 inputs=["t1c", "flair"]), tmp_path / "bad.zip")
    with pytest.raises(BundleError, match="not a usable 'grading' model"):
        import_bundle(bad, tmp_path / "lib")
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == ["fusion-copy"]  # the refused zip left nothing


# --- 6 and 14: a stage is up to date only with all its outputs as recorded; a report commits whole ------
def test_stage_is_up_to_date_only_with_its_recorded_outputs(tmp_path):
    from MedGradePredictLib.cascade import _Stages
    from MedGradeCoreLib.progress import Progress

    seg = tmp_path / "segmentation"

    def work():
        seg.mkdir(exist_ok=True)
        (seg / "lesion_mask.nii.gz").write_bytes(b"mask")
        (seg / "lesion_probability.nii.gz").write_bytes(b"probability")
        return "ran"

    def run() -> bool:
        stages = _Stages(tmp_path, force=False)
        ran = stages.run("segment", "key1", [seg / "lesion_mask.nii.gz"], work, Progress(), [seg])
        stages.save()
        return ran

    assert run() is True and run() is False  # a second run skips it
    (seg / "lesion_probability.nii.gz").unlink()  # a deleted intermediate
    assert run() is True and (seg / "lesion_probability.nii.gz").is_file()
    (seg / "lesion_probability.nii.gz").write_bytes(b"edited by hand")
    assert run() is True
    assert run() is False
    (tmp_path / "cascade.json").write_text('{"stages": {"segment": [1, 2]}}')  # a malformed record: rerun, no crash
    assert run() is True


def test_failed_report_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from MedGradePredictLib import report

    for name in ("report.html", "report.pdf", "report.json"):
        (tmp_path / name).write_text(f"old {name}")
    monkeypatch.setattr(report, "report_data", lambda *a: {"note": "new run"})
    monkeypatch.setattr(report, "_pictures", lambda *a: [])
    monkeypatch.setattr(report, "_html", lambda data, pictures: "new html")

    def broken_pdf(path, data, pictures):
        raise ValueError("the PDF renderer failed")

    monkeypatch.setattr(report, "_pdf", broken_pdf)
    with pytest.raises(ValueError):
        report.write_report(tmp_path, None, None, [], [], [], [], None)
    assert (tmp_path / "report.html").read_text() == "old report.html"
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]
    monkeypatch.setattr(report, "_pdf", lambda path, data, pictures: path.write_text("new pdf"))
    report.write_report(tmp_path, None, None, [], [], [], [], None)
    assert (tmp_path / "report.html").read_text() == "new html" and (tmp_path / "report.pdf").read_text() == "new pdf"


# --- 7: "$" is text -----------------------------------------------------------------------------------
def test_dollar_signs_in_report_text_are_text_not_mathtext(tmp_path, monkeypatch):
    import matplotlib.figure

    from MedGradePredictLib import report

    seen: list[tuple[str, bool]] = []
    save = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kw):
        seen.extend((t.get_text(), t.get_parse_math()) for t in self.texts)
        return save(self, *args, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    data = {"patient_id": r"P$\frac{1", "disclaimer": "research use", "volumes_ml": {"brain": 1, "lesion": 2},
            "answers": [{"task": "grade", "answer": "G3", "positive_class": "G3", "probability": 0.5, "model_id": "m",
                         "validated": ["AUC $0.8$"], "reader_findings": {"note": "costs $5 and $10"}}],
            "warnings": ["$x^2$"], "provenance": {"brain_extraction": {}, "medgrade": "1", "torch": "2",
                                                   "segmentation_model": "s"}}
    report._pdf(tmp_path / "r.pdf", data, [])  # invalid mathtext in the patient id: no crash
    assert (tmp_path / "r.pdf").stat().st_size > 1000
    assert seen and all(parse is False for _, parse in seen)
    assert any(r"P$\frac{1" in text for text, _ in seen) and any("costs $5 and $10" in t for t, _ in seen)


# --- 10: a stray file named like the next version -------------------------------------------------------
def test_save_correction_with_a_file_named_like_the_next_version(tmp_path):
    from MedGradeSegmentLib.segmentation.corrections import list_corrections, save_correction

    case = tmp_path / "case"
    (case / "corrections").mkdir(parents=True)
    (case / "corrections" / "v0001").write_text("not a version folder")
    (case / "corrections" / "v0002").symlink_to(tmp_path / "nowhere")
    arr = np.zeros((8, 16, 16), np.uint8)
    arr[3:5, 4:9, 4:9] = 1
    mask = sitk.GetImageFromArray(arr)

    def stuck(signum, frame):
        raise TimeoutError("save_correction spins")

    old = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(20)
    try:
        record = save_correction(case, mask, "alice")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert record.version == 3 and (case / "corrections" / "v0003" / "lesion_mask.nii.gz").is_file()
    assert [r["version"] for r in list_corrections(case)] == [3]


# --- 11: the deep breast model refuses what cannot be graded ------------------------------------------
@pytest.mark.parametrize("what", ["empty mask", "all black", "2x2"])
def test_breast_deep_model_refuses_ungradable_input(tmp_path, what):
    from MedGradePredictLib.breast.bundles import load_breast_predictor
    from MedGradePredictLib.breast.case import BreastCase, BreastImage

    rng = np.random.default_rng(0)
    size = (2, 2) if what == "2x2" else (64, 64)
    arr = np.zeros(size, np.float32) if what == "all black" else rng.random(size).astype(np.float32) * 200
    image = sitk.JoinSeries(sitk.GetImageFromArray(arr))
    roi_arr = np.zeros(size, np.uint8)
    if what != "empty mask":
        roi_arr[size[0] // 4: size[0] // 4 * 3 + 1, size[1] // 4: size[1] // 4 * 3 + 1] = 1
    roi = sitk.JoinSeries(sitk.GetImageFromArray(roi_arr))
    roi.CopyInformation(image)
    case = BreastCase("c1", "p1", us={"img": BreastImage(image, roi, str(tmp_path / f"{what}.png"), False)})
    for model in ("breast-us-fusion-busbra-busi", "breast-us-radiomics-busbra-busi"):
        predictor = load_breast_predictor(PREDICT_MODELS / model, device="cpu")
        with pytest.raises(InputError, match="empty|blank|same value|too small|pixels"):
            predictor.predict([case])


# --- 20, 21, 22: Slurm helpers --------------------------------------------------------------------------
def test_multinode_script_rewrites_only_the_endpoint_argument():
    from MedGradeTrainLib.launchers import slurm_train_script

    user_path = "/data/--rdzv-endpoint=MASTER/run"
    script = slurm_train_script(["train", "--config", user_path, "--output", "/runs/a"], "job", gpus=2, nodes=2)
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    assert srun.count("$MASTER_ADDR") == 1 and '--rdzv-endpoint="$MASTER_ADDR:29500"' in srun
    assert user_path in srun  # the user's path reaches the job unchanged


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "1e3"])
def test_bad_slurm_gpus_is_one_error_line(tmp_path, capsys, value):
    (tmp_path / "cohort" / "c1").mkdir(parents=True)
    argv = ["segment", str(tmp_path / "cohort"), "--output", str(tmp_path / "out"), "--slurm-gpus", value,
            "--slurm-print-script"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--slurm-gpus" in err and "Traceback" not in err


def test_gather_does_not_count_a_partial_folder_as_done(tmp_path):
    from MedGradeTrainLib.cohort_jobs import gather

    out = tmp_path / "out"
    for name, entry in (("done", "lesion_mask.nii.gz"), ("partial", ".segmentation.partial-123"),
                        ("plain-partial", "segmentation.partial")):
        (out / name).mkdir(parents=True)
        (out / name / entry).mkdir() if "partial" in entry else (out / name / entry).write_text("x")
    r = gather("segment", out, [tmp_path / n for n in ("done", "partial", "plain-partial", "missing")])
    assert r["succeeded"] == ["done"] and r["failed"] == ["partial", "plain-partial", "missing"]
