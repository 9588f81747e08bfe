#!/usr/bin/env bash
# The README's test command: sets up .venv (first run only) and runs the unit
# tests and the notebooks (nbval re-executes each notebook and compares outputs).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
exec .venv/bin/python -m pytest tests notebooks --nbval --nbval-current-env \
    --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider "$@"
