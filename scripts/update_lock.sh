#!/usr/bin/env bash
# Re-resolve requirements-lock.txt on purpose: a throw-away environment gets the newest versions that
# pyproject.toml's ranges allow, and their exact versions become the lock. Run the whole suite on the new
# lock before committing it (a package update that changes a result is then seen, not inherited).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q "torch==2.13.0"
"$tmp/venv/bin/python" -m pip install -q -e ".[test]"
{ echo "# Exact versions scripts/setup.sh installs (pip constraints). Updated on purpose with scripts/update_lock.sh,"
  echo "# never by the calendar: a fresh install pulls these, not whatever is newest that day."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v "^#" | sed 's/^torch==\([0-9.]*\)+cpu$/torch==\1/'
} > requirements-lock.txt.partial
mv requirements-lock.txt.partial requirements-lock.txt
echo "requirements-lock.txt updated; run bash scripts/test.sh before committing it"
