"""Clinical (id, age, sex) and label CSVs: conventions, extra columns, and clear errors on bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import read_clinical_csv, read_labels_csv, write_csv


def _csv(tmp_path: Path, text: str, name: str = "clinical.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_research_client_convention_and_extra_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,age,sex,site,idh\nP001,54,0,Beijing,1\nP002,61.5,1,,0\n007,40,M,Shanghai,\n")
    table = read_clinical_csv(path)
    assert table["P001"] == {"age": 54.0, "sex": "M", "site": "Beijing", "idh": 1}
    assert table["P002"] == {"age": 61.5, "sex": "F", "idh": 0}  # empty cells are left out
    assert table["007"]["sex"] == "M"  # ids stay text


def test_excel_exports_bom_semicolons_and_header_case(tmp_path: Path) -> None:
    path = _csv(tmp_path, "Patient ID;Age;Sex\r\nP1;70;1\r\n", encoding="utf-8-sig")
    assert read_clinical_csv(path) == {"P1": {"age": 70.0, "sex": "F"}}


@pytest.mark.parametrize(("text", "problem"), [
    ("id,age,sex\nP1,54,0\nP2,fifty,1\n", "line 3 (patient P2): age 'fifty' is not a number"),
    ("id,age,sex\nP1,54,2\n", "line 2 (patient P1): sex '2' is not 0 (male), 1 (female), M or F"),
    ("id,age,sex\nP1,154,0\n", "age '154' is outside 0-130 years"),
    ("id,age,sex\nP1,54,0\nP1,55,1\n", "line 3: duplicate patient id 'P1' (first on line 2)"),
    ("id,age,sex\n,54,0\n", "line 2: empty patient id"),
    ("id,age,sex\nP1,54,0,extra\n", "line 2: 4 values but the header has 3 columns"),
    ("name,age,sex\nP1,54,0\n", "no patient id column"),
    ("", "the CSV file is empty"),
])
def test_bad_rows_name_file_line_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_clinical_csv(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)


def test_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.csv: CSV file not found"):
        read_clinical_csv(tmp_path / "nope.csv")


def test_labels_ki67_level_and_grade(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,grade,Ki-67\nP1,HGG,35\nP2,LGG,9.5%\nP3,LGG,low\nP4,HGG,10\nP5,LGG,\n", "labels.csv")
    table = read_labels_csv(path)
    assert table["P1"] == {"grade": "HGG", "ki67": 35.0, "ki67_level": "high"}
    assert table["P2"] == {"grade": "LGG", "ki67": 9.5, "ki67_level": "low"}
    assert table["P3"] == {"grade": "LGG", "ki67_level": "low"}
    assert table["P4"]["ki67_level"] == "high"  # the cut-off is "< 10 % is low"
    assert table["P5"] == {"grade": "LGG"}


@pytest.mark.parametrize(("row", "problem"), [
    ("P1,HGG,abc", "ki67 'abc' is neither a percentage nor low/high"),
    ("P1,HGG,140", "ki67 '140' is outside 0-100 %"),
])
def test_bad_label_rows(tmp_path: Path, row: str, problem: str) -> None:
    path = _csv(tmp_path, f"id,grade,ki67\n{row}\n", "labels.csv")
    with pytest.raises(InputError, match=f"line 2 \\(patient P1\\): {problem}"):
        read_labels_csv(path)


def test_contradicting_ki67_and_level(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,ki67,ki67_level\nP1,25,low\n", "labels.csv")
    with pytest.raises(InputError, match="contradicts ki67_level"):
        read_labels_csv(path)


def test_write_then_read_is_identity(tmp_path: Path) -> None:
    rows = {"P1": {"age": 54.0, "sex": "M", "site": "A"}, "P2": {"age": 61.5, "sex": "F"}}
    path = write_csv(tmp_path / "out.csv", rows, first_columns=("age", "sex"))
    assert path.read_text().splitlines()[:2] == ["id,age,sex,site", "P1,54,0,A"]
    assert read_clinical_csv(path) == rows
