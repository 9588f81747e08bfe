#!/usr/bin/env bash
# The GPU check: what runs first whenever minivod gets a CUDA GPU (about 5-8 minutes on one).
#
#   bash scripts/gpu_check.sh            # on the GPU machine, from the repository root
#   bash scripts/gpu_check.sh --dry-run  # every step on the CPU with tiny sizes (CI runs this)
#
# 1. the CUDA tests (pytest -m cuda): every method trains two iterations and detects on CUDA;
# 2. benchmarks/bench_gpu.py: ms/frame of every method in fp32 and AMP, tiny and paper presets,
#    and 200 training iterations of the baseline and SELSA with their loss curves;
# results in benchmarks/results/gpu.md (with the GPU's name) and gpu.json. Commit them.
# Runs with $PYTHON if set, else .venv/bin/python when it exists, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
PY=${PYTHON:-$PY}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
start=$(date +%s)
if [ $DRY = 1 ]; then
    echo "gpu_check: dry run on the CPU (no results are written to benchmarks/results)"
    "$PY" -m pytest -m cuda tests --collect-only -q -p no:cacheprovider | tail -1
    "$PY" benchmarks/bench_gpu.py --dry-run
else
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" -m pytest -m cuda tests -q -p no:cacheprovider
    "$PY" benchmarks/bench_gpu.py
fi
echo "gpu_check finished in $(( $(date +%s) - start )) s"
