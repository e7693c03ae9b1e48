"""Which packages contribute ``medgrade`` sub-commands, found without the core naming any of them.

A package contributes when it is a top-level ``MedGrade<Name>Lib`` with a ``commands`` subpackage that
exposes ``register(subparsers)`` (and, optionally, ``intercept(argv) -> int | None`` for a command line it
takes over before parsing, e.g. a cohort run submitted as a Slurm array). Installed with pip, the packages
are listed by the ``medgrade.commands`` entry point group; inside Slicer (module folders on ``sys.path``) and
in a source tree they are found by scanning ``sys.path``. The core stays below every module it serves.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import re
from types import ModuleType

_LIB = re.compile(r"^MedGrade[A-Z][A-Za-z]*Lib$")
ORDER = ("Core", "Segment", "Predict", "Train")  # help lists the shared commands first, then by module


def _rank(name: str) -> tuple[int, str]:
    stem = name[len("MedGrade"):-len("Lib")]
    return (ORDER.index(stem) if stem in ORDER else len(ORDER), name)


def command_package_names() -> list[str]:
    """Top-level package names that may hold ``commands``, in help order."""
    names = {info.name for info in pkgutil.iter_modules() if _LIB.match(info.name)}
    try:
        for ep in importlib.metadata.entry_points(group="medgrade.commands"):
            top = ep.value.split(".")[0].split(":")[0]
            if _LIB.match(top):
                names.add(top)
    except Exception:  # a broken distribution elsewhere must not hide the commands
        pass
    return sorted(names, key=_rank)


def command_modules() -> list[ModuleType]:
    """The importable ``<Lib>.commands`` modules (a Lib without one, or absent, is skipped)."""
    out = []
    for name in command_package_names():
        mod_name = f"{name}.commands"
        try:
            out.append(importlib.import_module(mod_name))
        except ModuleNotFoundError as exc:
            if exc.name in (name, mod_name):
                continue
            raise
    return out
