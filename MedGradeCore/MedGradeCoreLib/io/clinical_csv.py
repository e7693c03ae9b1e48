"""Clinical (``id, age, sex`` + extra columns) and label (grade, Ki-67 ...) CSV files, read and written.

Sex follows the research client's convention: 0 = male, 1 = female (``M``/``F``/``male``/``female``
are accepted too) and is stored as ``"M"``/``"F"``. Ki-67 is a percentage; ``ki67_level`` is derived
(``"low"`` below 10 %, ``"high"`` otherwise). Empty cells are left out of the patient's dict.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

KI67_THRESHOLD = 10.0  # percent; below = "low", otherwise "high" (the thesis's cut-off)
_ID_COLUMNS = ("id", "patient_id", "patientid", "patient", "case", "case_id", "subject", "subject_id")
_SEX = {"0": "M", "1": "F", "m": "M", "f": "F", "male": "M", "female": "F"}
_INT = re.compile(r"^[+-]?(?:0|[1-9]\d*)$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$")


def _column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower()).replace("ki_67", "ki67")


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"2.5"`` -> 2.5, other text unchanged (ids like ``"007"`` stay text)."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text) and not (text.lstrip("+-").startswith("0") and text.lstrip("+-")[1:2].isdigit()):
        return float(text)
    return text


def _read_rows(path: str | Path) -> tuple[Path, list[str], list[tuple[int, dict[str, str]]]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "CSV file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot be read as a UTF-8 text CSV file ({exc})") from None
    if not text.strip():
        raise InputError(path, "the CSV file is empty")
    header_line = text.splitlines()[0]
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = [_column(h) for h in next(reader)]
    id_col = next((c for c in _ID_COLUMNS if c in header), None)
    if id_col is None:
        raise InputError(path, f"no patient id column (expected one of: {', '.join(_ID_COLUMNS[:3])}); "
                               f"columns are {', '.join(header)}")
    if len(set(header)) != len(header):
        raise InputError(path, f"repeated column names in the header: {', '.join(header)}")
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            raise InputError(path, f"line {line}: {len(values)} values but the header has {len(header)} columns")
        row = {h: v.strip() for h, v in zip(header, values)}
        row["id"] = row.pop(id_col, "")
        rows.append((line, row))
    return path, header, rows


def _collect(path: str | Path, convert) -> dict[str, dict[str, Any]]:
    path, _, rows = _read_rows(path)
    out: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        pid = row.pop("id")
        if not pid:
            raise InputError(path, f"line {line}: empty patient id")
        if pid in out:
            raise InputError(path, f"line {line}: duplicate patient id {pid!r} (first on line {first_line[pid]})")
        try:
            out[pid] = convert({k: v for k, v in row.items() if v != ""})
        except ValueError as exc:
            raise InputError(path, f"line {line} (patient {pid}): {exc}") from None
        first_line[pid] = line
    return out


def _number_within(text: str, low: float, high: float, label: str, not_number: str, unit: str) -> float:
    """``text`` as a number in ``[low, high]``; else a ValueError ``"<label> <not_number>"`` or ``"<label> is
    outside <low>-<high> <unit>"``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{label} {not_number}") from None
    if not low <= value <= high:
        raise ValueError(f"{label} is outside {low:g}-{high:g} {unit}")
    return value


def _clinical_row(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in row.items():
        if key == "age":
            out["age"] = _number_within(text, 0, 130, f"age {text!r}", "is not a number", "years")
        elif key in ("sex", "gender"):
            sex = _SEX.get(text.lower())
            if sex is None:
                raise ValueError(f"sex {text!r} is not 0 (male), 1 (female), M or F")
            out["sex"] = sex
        else:
            out[key] = parse_value(text)
    return out


def ki67_level(percent: float) -> str:
    """``"low"`` below 10 % Ki-67, ``"high"`` otherwise."""
    return "low" if percent < KI67_THRESHOLD else "high"


def _labels_row(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: parse_value(v) for k, v in row.items() if k not in ("ki67", "ki67_level")}
    if "ki67" in row:
        text = row["ki67"].rstrip("%").strip()
        if text.lower() in ("low", "high"):
            out["ki67_level"] = text.lower()
        else:
            value = _number_within(text, 0, 100, f"ki67 {row['ki67']!r}", "is neither a percentage nor low/high", "%")
            out["ki67"] = value
            out["ki67_level"] = ki67_level(value)
    if "ki67_level" in row:
        level = row["ki67_level"].lower()
        if level not in ("low", "high"):
            raise ValueError(f"ki67_level {row['ki67_level']!r} is not low or high")
        if out.get("ki67_level", level) != level:
            raise ValueError(f"ki67 {row['ki67']!r} % contradicts ki67_level {row['ki67_level']!r}")
        out["ki67_level"] = level
    return out


def read_clinical_csv(path: str | Path) -> dict[str, dict[str, Any]]:
    """Patient id -> ``{"age": float, "sex": "M"|"F", <extra columns>}`` from an ``id, age, sex`` CSV."""
    return _collect(path, _clinical_row)


def read_labels_csv(path: str | Path) -> dict[str, dict[str, Any]]:
    """Patient id -> labels (``grade``, ``ki67`` %, derived ``ki67_level`` ...) from a CSV with an id column."""
    return _collect(path, _labels_row)


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def write_csv(path: str | Path, rows: dict[str, dict[str, Any]], first_columns: tuple[str, ...] = ()) -> Path:
    """Write ``{id: {column: value}}`` as a CSV with an ``id`` column (``sex`` written as 0/1)."""
    path = Path(path)
    columns = [c for c in first_columns if any(c in r for r in rows.values())]
    columns += sorted({k for r in rows.values() for k in r} - set(columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *columns])
        for pid, row in rows.items():
            values = []
            for c in columns:
                v = row.get(c)
                values.append({"M": "0", "F": "1"}.get(v, _format(v)) if c == "sex" else _format(v))
            writer.writerow([pid, *values])
    return path


def upsert_csv_row(path: str | Path, patient_id: str, row: dict[str, Any], labels: bool = False,
                   first_columns: tuple[str, ...] = ()) -> Path:
    """Add or replace one patient's row in a clinical (or, with ``labels``, label) CSV file."""
    path = Path(path)
    rows = (read_labels_csv(path) if labels else read_clinical_csv(path)) if path.is_file() else {}
    rows[patient_id] = dict(row)
    return write_csv(path, rows, first_columns)
