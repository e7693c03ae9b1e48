#!/usr/bin/env bash
# All set-up on a fresh Linux machine: a virtual environment in .venv with MedGrade and its dependencies at
# the exact versions of requirements-lock.txt (torch the CPU build 2.13.0, so that no CUDA packages are
# pulled here). The lock is changed on purpose (scripts/update_lock.sh), never by the calendar.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOCK=requirements-lock.txt
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.medgrade-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$LOCK" -nt "$stamp" ]; then
  python -m pip install -q --upgrade "pip==26.3" 2>&1 | grep -v "is ignored" || true
  python -m pip install -q -c "$LOCK" "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
  python -m pip install -q -c "$LOCK" -e ".[test]" 2>&1 | grep -v -e "is ignored" -e "BuildBackendWarning" || true
  python -c "import torch, monai, SimpleITK, itk, slicer, lightgbm"
  touch "$stamp"
fi
