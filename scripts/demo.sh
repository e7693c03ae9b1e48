#!/usr/bin/env bash
# Set up (if needed) and run the whole pipeline on the bundled real case; outputs in demo-output/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export MEDGRADE_SAMPLE_MIRROR=${MEDGRADE_SAMPLE_MIRROR:-$(cd .. && pwd)/shared/data}
export MEDGRADE_CACHE=${MEDGRADE_CACHE:-$PWD/.cache/medgrade}
exec medgrade demo --output demo-output "$@"
