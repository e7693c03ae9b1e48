"""Grading tasks: a label column of the cohort, binary by default, with a named positive class."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from MedGradeCoreLib.errors import InputError


@dataclass(frozen=True)
class Task:
    """A binary task read from a label column.

    ``threshold`` turns a numeric column into classes (value >= threshold -> positive), e.g. Ki-67
    index in percent with threshold 10 -> "high"; string values are matched to the class names.
    """

    name: str
    column: str
    positive_class: str
    negative_class: str
    threshold: float | None = None

    def encode(self, value: Any) -> int:
        """Label value -> 1 (positive) / 0 (negative); refuses values it cannot place."""
        if isinstance(value, str):
            v = value.strip()
            if v.lower() == self.positive_class.lower():
                return 1
            if v.lower() == self.negative_class.lower():
                return 0
            if self.threshold is not None:
                try:
                    value = float(v.rstrip("%"))
                except ValueError:
                    pass
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float)) and self.threshold is not None:
            return int(float(value) >= self.threshold)
        if isinstance(value, (int, float)) and value in (0, 1):
            return int(value)
        raise InputError(None, f"task {self.name!r}: label {value!r} in column {self.column!r} is neither "
                               f"{self.positive_class!r} nor {self.negative_class!r}")

    def decode(self, positive: int | bool) -> str:
        return self.positive_class if positive else self.negative_class

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Task":
        return cls(**{k: d[k] for k in ("name", "column", "positive_class", "negative_class") if k in d},
                   threshold=d.get("threshold"))


PRESETS: dict[str, Task] = {
    "ki67": Task("ki67", "ki67_level", "high", "low", threshold=10.0),  # Ki-67 < 10 % low, else high
    "grade": Task("grade", "grade", "HGG", "LGG"),
    "idh": Task("idh", "idh", "mutant", "wildtype"),
}


def get_task(spec: str | dict[str, Any] | Task) -> Task:
    """A preset name (``ki67``, ``grade``, ``idh``), a dict, or a Task."""
    if isinstance(spec, Task):
        return spec
    if isinstance(spec, dict):
        return Task.from_dict(spec)
    if spec in PRESETS:
        return PRESETS[spec]
    raise InputError(None, f"unknown task {spec!r}; presets: {', '.join(PRESETS)} (or give a dict with "
                           "name, column, positive_class, negative_class)")
