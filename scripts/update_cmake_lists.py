#!/usr/bin/env python3
"""Rewrite the file lists (MODULE_PYTHON_SCRIPTS, MODULE_PYTHON_RESOURCES) of each module's
CMakeLists.txt from the files on disk. Run it after adding or removing a Lib file or a resource;
Testing/test_static_checks.py fails until the lists match."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing"))

from static_checks import MODULES, rewrite_cmake_lists  # noqa: E402


def main() -> int:
    for module in MODULES:
        changed = rewrite_cmake_lists(REPO / module)
        print(f"{module}/CMakeLists.txt: {'updated' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
