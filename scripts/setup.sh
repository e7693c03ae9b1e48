#!/usr/bin/env bash
# All set-up on a fresh Linux machine: a virtual environment in .venv with MedGrade and its
# dependencies (torch pinned to the CPU build 2.13.0 so that no CUDA packages are pulled here).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.medgrade-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
  python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
  python -c "import torch, monai, SimpleITK, itk, slicer, lightgbm" 
  touch "$stamp"
fi
