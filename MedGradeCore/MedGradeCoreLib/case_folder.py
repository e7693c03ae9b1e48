"""The preprocessed case folder (docs/CONTRACTS.md): the one reader and writer of its ``case.json``, and the
one patient-id sanitiser every folder and file name goes through.

``case.json`` names the case's files relative to the folder: ``sequences`` (sequence -> image), ``reference``,
``brain_mask``, ``search_mask``, ``lesion_mask``, ``transforms``, plus the patient id, clinical data, labels
and the preprocessing parameters. Images themselves are read by their own modules (``io.images``, Segment's
``preprocess.io``); this module only knows the record and where the files are.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from MedGradeCoreLib.atomic import atomic_write_text
from MedGradeCoreLib.errors import InputError

CASE_FILE = "case.json"
# "<patient id>: written <case folder> (<n> warnings)": the line `medgrade preprocess` prints per case
_WRITTEN = re.compile(r": written (.+) \(\d+ warnings?\)$")


def sanitise_patient_id(patient_id: str, default: str = "case") -> str:
    """``patient_id`` as a safe folder or file name (the case folder ``medgrade preprocess`` writes, the panels'
    exported inputs, the cascade's outputs, result files): each character but letters, digits, ``-``, ``_``
    and ``.`` becomes ``_``; leading/trailing dots go (no hidden or ``..`` names); ``default`` when empty."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(patient_id)).strip(".")
    return name or default


def case_file(folder: str | Path) -> Path:
    return Path(folder) / CASE_FILE


def is_case_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a preprocessed case folder (it holds a ``case.json``)."""
    return case_file(folder).is_file()


def read_case_info(folder: str | Path, required: tuple[str, ...] = ("reference", "sequences")) -> dict[str, Any]:
    """The ``case.json`` record of ``folder``; an :class:`InputError` naming the file when it is missing, not
    JSON, not an object, or lacks one of ``required``."""
    path = case_file(folder)
    if not path.is_file():
        raise InputError(Path(folder), f"not a preprocessed case folder (no {CASE_FILE}): preprocess the case first")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(path, f"invalid {CASE_FILE} ({exc})") from None
    if not isinstance(info, dict):
        raise InputError(path, f"invalid {CASE_FILE} (not a JSON object)")
    for key in required:
        if key not in info:
            raise InputError(path, f"missing key {key!r}")
    if "sequences" in required and not isinstance(info["sequences"], dict):
        raise InputError(path, "'sequences' is not a mapping of sequence -> file")
    return info


def write_case_info(folder: str | Path, info: dict[str, Any]) -> Path:
    """Write ``folder/case.json`` atomically (a partial file renamed on success)."""
    path = case_file(folder)
    atomic_write_text(path, json.dumps(info, indent=1, default=str))
    return path


def case_path(folder: str | Path, info: dict[str, Any], key: str) -> Path | None:
    """The file ``info[key]`` names inside ``folder`` (``None`` when the record has none); a name leaving the
    folder (absolute, ``..``) is refused."""
    rel = info.get(key)
    if not rel:
        return None
    return _inside(folder, rel, key)


def reference_image_path(folder: str | Path, info: dict[str, Any] | None = None) -> Path:
    """The case's reference image (``sequences[reference]``): the grid its masks and results live on."""
    info = info if info is not None else read_case_info(folder)
    reference = info.get("reference")
    if reference not in info["sequences"]:
        raise InputError(case_file(folder), f"reference {reference!r} is not one of its sequences")
    return _inside(folder, info["sequences"][reference], f"sequences.{reference}")


def _inside(folder: str | Path, rel: Any, what: str) -> Path:
    root = Path(folder).resolve()
    if not isinstance(rel, str) or not rel:
        raise InputError(case_file(folder), f"{what}: not a file name")
    path = (root / rel).resolve()
    if root != path and root not in path.parents:
        raise InputError(case_file(folder), f"{what}: {rel!r} lies outside the case folder")
    return path


def written_case_folder(output: str | Path, log: list[str], since: float = 0.0) -> Path:
    """The case folder a ``medgrade preprocess`` run wrote: the one it reported (``<id>: written <folder>
    (<n> warnings)``), else the newest case folder under ``output`` written since ``since`` (epoch seconds)."""
    for line in reversed(log):
        m = _WRITTEN.search(line)
        if m and is_case_folder(m.group(1)):
            return Path(m.group(1))
    root = Path(output)
    cases = [f for f in root.glob(f"*/{CASE_FILE}") if f.stat().st_mtime >= since - 1] if root.is_dir() else []
    if not cases:
        raise InputError(root, "no case folder written by this run")
    return max(cases, key=lambda f: f.stat().st_mtime).parent
