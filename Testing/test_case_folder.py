"""The case folder module is the one reader/writer of ``case.json`` and the one patient-id sanitiser: what
``medgrade preprocess`` names a folder is what the panels and the cascade compute, bad records are one-line
errors naming the file, and no module file parses ``case.json`` itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from MedGradeCoreLib import case_folder as cf
from MedGradeCoreLib.errors import InputError

REPO = Path(__file__).resolve().parents[1]
MODULE_FILES = sorted(REPO.glob("MedGrade*/MedGrade*.py"))


@pytest.mark.parametrize("raw, safe", [("TCGA-FG-6692", "TCGA-FG-6692"), ("a b/c", "a_b_c"), ("..", "case"),
                                       (".hidden", "hidden"), ("", "case"), ("Müller 1", "Müller_1")])
def test_one_sanitiser_for_every_case_name(raw, safe):
    from MedGradePredictLib.cascade import case_label
    from MedGradeSegmentLib.preprocess.io import case_folder

    assert cf.sanitise_patient_id(raw) == safe
    assert case_folder("/out", raw).name == safe  # the folder medgrade preprocess writes
    assert case_label(Path("x"), raw or None) == (safe if raw else "x")  # the cascade's output folder


def test_round_trip_and_reference(tmp_path):
    info = {"patient_id": "P1", "reference": "t1c", "sequences": {"t1c": "t1c.nii.gz", "t2": "t2.nii.gz"}}
    cf.write_case_info(tmp_path, info)
    assert cf.is_case_folder(tmp_path) and cf.read_case_info(tmp_path) == info
    assert cf.reference_image_path(tmp_path) == (tmp_path / "t1c.nii.gz").resolve()
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file renamed on success


@pytest.mark.parametrize("content, problem", [
    ("{not json", "invalid case.json"), ("[1, 2]", "not a JSON object"),
    ('{"sequences": {}}', "missing key 'reference'"),
    ('{"reference": "t1c", "sequences": {"t1c": "../../etc/passwd"}}', "outside the case folder"),
    ('{"reference": "flair", "sequences": {"t1c": "t1c.nii.gz"}}', "not one of its sequences"),
])
def test_bad_records_are_one_line_errors_naming_the_file(tmp_path, content, problem):
    (tmp_path / "case.json").write_text(content)
    with pytest.raises(InputError) as err:
        cf.reference_image_path(tmp_path)
    assert problem in str(err.value) and str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_not_a_case_folder(tmp_path):
    with pytest.raises(InputError, match="no case.json"):
        cf.read_case_info(tmp_path)


def test_written_case_folder_from_the_log_else_the_newest(tmp_path):
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        cf.write_case_info(tmp_path / name, {"reference": "t1c", "sequences": {}})
    log = ["something", f"P: written {tmp_path / 'old'} (0 warnings)"]
    assert cf.written_case_folder(tmp_path, log) == tmp_path / "old"
    assert cf.written_case_folder(tmp_path, [], since=0).name in ("old", "new")
    with pytest.raises(InputError, match="no case folder written"):
        cf.written_case_folder(tmp_path / "empty", [])


def test_no_module_file_parses_case_json():
    for path in MODULE_FILES:
        text = path.read_text()
        assert not re.search(r"['\"]case\.json['\"]", text), f"{path.name} names case.json itself"
        assert "json.load(" not in text or "case" not in text.split("json.load(")[1][:80], path.name


def test_grading_result_files_are_named_with_the_same_sanitiser(tmp_path):
    import SimpleITK as sitk

    from MedGradePredictLib.predict import GradingResult
    from MedGradePredictLib.results_io import write_results

    result = GradingResult("Müller 1/..", "ki67 level", "ki67", "high", "low", "high", 0.7, "near", [1], [1], [0.7],
                           [10.0], "m", "0" * 64, heatmap=sitk.Image(4, 4, 2, sitk.sitkFloat32))
    write_results([result], tmp_path / "out")
    [heat] = (tmp_path / "out" / "heatmaps").iterdir()
    assert heat.name == f"{cf.sanitise_patient_id('Müller 1/..')}__{cf.sanitise_patient_id('ki67 level')}.nii.gz"
