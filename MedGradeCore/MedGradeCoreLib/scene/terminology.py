"""MedGrade's segment terminology: a standard Slicer ``.term.json`` file shipped with the package.

Segments carry the serialized entry
``<context>~<category>~<type>~<type modifier>~<region context>~<region>~<region modifier>``
(codes as ``scheme^value^meaning``), the format ``vtkSlicerTerminologiesModuleLogic`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TERMINOLOGY_FILE = (
    Path(__file__).resolve().parents[1] / "terminology" / "SegmentationCategoryTypeModifier-MedGrade.term.json"
)


@dataclass(frozen=True)
class TerminologyEntry:
    """One MedGrade segment kind: serialized terminology entry, display name and colour (0..1)."""

    key: str
    serialized: str
    name: str
    color: tuple[float, float, float]


def _code(item: dict[str, Any]) -> str:
    return f"{item['CodingSchemeDesignator']}^{item['CodeValue']}^{item['CodeMeaning']}"


@lru_cache(maxsize=1)
def _entries() -> dict[str, TerminologyEntry]:
    doc = json.loads(TERMINOLOGY_FILE.read_text())
    context = doc["SegmentationCategoryTypeContextName"]
    out: dict[str, TerminologyEntry] = {}
    for category in doc["SegmentationCodes"]["Category"]:
        for typ in category["Type"]:
            key = typ["3dSlicerLabel"]
            serialized = f"{context}~{_code(category)}~{_code(typ)}~^^~~^^~^^"
            color = tuple(v / 255.0 for v in typ["recommendedDisplayRGBValue"])
            out[key] = TerminologyEntry(key, serialized, typ["CodeMeaning"], color)  # type: ignore[arg-type]
    return out


def context_name() -> str:
    """The terminology context name of MedGrade's file."""
    return json.loads(TERMINOLOGY_FILE.read_text())["SegmentationCategoryTypeContextName"]


def terminology_entry(key: str) -> TerminologyEntry:
    """Entry for ``"brain"``, ``"neoplasm"``, ``"necrosis"`` or ``"edema"``."""
    entries = _entries()
    if key not in entries:
        raise KeyError(f"unknown segment kind {key!r}; known: {sorted(entries)}")
    return entries[key]


def load_medgrade_terminology(terminologies_logic: Any) -> str:
    """Load MedGrade's terminology into a Terminologies logic (headless or
    ``slicer.modules.terminologies.logic()``); returns its context name."""
    name = terminologies_logic.LoadTerminologyFromFile(str(TERMINOLOGY_FILE))
    if not name:
        raise RuntimeError(f"{TERMINOLOGY_FILE}: could not be loaded as a terminology")
    return name
