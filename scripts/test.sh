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
# One thread: the notebooks' printed numbers then do not depend on the machine's core count
# (parallel float reductions sum in another order), so nbval compares like with like.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/python -m pytest tests notebooks --nbval --nbval-current-env \
    --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider "$@"
