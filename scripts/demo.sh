#!/usr/bin/env bash
# The README's main command: sets up .venv (first run only), then compares every
# shipped method on data_small val (python -m minivod demo). Extra arguments go
# to the demo, e.g. `bash scripts/demo.sh --device cuda`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python -m minivod demo "$@"
