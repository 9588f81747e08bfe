#!/usr/bin/env bash
# Notebook 00's ipywidgets scrubber in a real browser (about a minute): JupyterLab on localhost with a
# token, headless Chromium driven by Selenium, every cell run, the frame slider dragged, two screenshots
# compared. Results: benchmarks/results/browser_check.{md,json} and the two screenshots.
#
#   bash scripts/browser_check.sh            # installs what is missing, then runs the check
#   bash scripts/browser_check.sh --dry-run  # no browser: finds the scrubber cell, lists missing tools
#
# Chromium comes from Debian (apt-get install chromium chromium-driver; done here when run as root),
# JupyterLab and Selenium from PyPI into .venv; nothing is downloaded while the check runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
PY=${PYTHON:-$PY}
if [ "${1:-}" = "--dry-run" ]; then
    exec "$PY" benchmarks/browser_check.py --dry-run
fi
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "browser check: install Chromium first: sudo apt-get install chromium chromium-driver" >&2
        exit 2
    fi
fi
"$PY" -m pip install --quiet selenium jupyterlab ipywidgets
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} exec "$PY" benchmarks/browser_check.py "$@"
