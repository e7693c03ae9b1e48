"""Errors a user sees: each names the file (or case) and the problem in one line."""

from __future__ import annotations

from pathlib import Path


class MedGradeError(Exception):
    """Base class of every error MedGrade reports to a user instead of a traceback."""


class InputError(MedGradeError):
    """A bad input file or folder: ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class BundleError(MedGradeError):
    """A model bundle that is missing, incomplete or tampered with."""


class CancelledError(MedGradeError):
    """The user cancelled a long operation."""
