"""A panel action's state as its presenter decides it: enabled or not, and why not (the button's tooltip)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    enabled: bool
    reason: str = ""  # shown as the tooltip while disabled

    @classmethod
    def when(cls, condition: bool, reason: str) -> "Action":
        return cls(True) if condition else cls(False, reason)


def path_text(path: object) -> str:
    """'' for an unset path parameter (``None``, ``Path()``, ``.``), else its text."""
    text = str(path) if path is not None else ""
    return "" if text in ("", ".") else text
