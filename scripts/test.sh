#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite against the real images in ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export MEDGRADE_SAMPLE_MIRROR=${MEDGRADE_SAMPLE_MIRROR:-$(cd .. && pwd)/shared/data}
export MEDGRADE_CACHE=${MEDGRADE_CACHE:-$PWD/.cache/medgrade}
exec python -m pytest "$@"
