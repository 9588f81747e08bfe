#!/usr/bin/env bash
# The notebooks' first cell on a fresh runtime, as a student on Colab or a lab's JupyterHub meets it:
# a new virtual environment with nothing installed but Jupyter, and the committed repository cloned.
#   case 1: the notebook in the folder holding the clone (Colab's /content after a git clone): the cell finds
#           the clone, works from its notebooks/, pip-installs minivod from it and finds ../data_small;
#   case 2: the notebook alone in an empty folder, MINIVOD_SOURCE pointing at the clone: the cell installs
#           minivod (not editable, so no data_small beside it) and generates data_small into MINIVOD_DATA,
#           which must equal the committed one file for file.
# Writes benchmarks/results/first_cell.txt. Needs PyPI (jupyter, torch); a few minutes.
# Usage: bash scripts/first_cell_check.sh [--dry-run]   (--dry-run: print the steps, run nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=$REPO/benchmarks/results/first_cell.txt
steps="1. python3 -m venv; pip install jupyter (nothing else)
2. git clone the committed repository
3. case 1: execute [first cell + a check cell] from the folder holding the clone with jupyter nbconvert
4. pip uninstall minivod; case 2: execute it from an empty folder with MINIVOD_SOURCE=clone, MINIVOD_DATA=cache
5. compare the generated data_small with the committed one; write $OUT"
if [ "${1:-}" = "--dry-run" ]; then
    echo "$steps"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export JUPYTER_DATA_DIR=$WORK/jupyter-data JUPYTER_CONFIG_DIR=$WORK/jupyter-config  # no user kernels or config
t0=$SECONDS
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --upgrade pip
"$WORK/venv/bin/pip" install --quiet jupyter
t_jupyter=$((SECONDS - t0))
git clone --quiet "$REPO" "$WORK/clone"
"$WORK/venv/bin/python" - "$WORK/clone/notebooks/first_cell_check.ipynb" "$WORK/clone/notebooks/setup_cell.py" <<'PY'
import sys
import nbformat

nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(open(sys.argv[2]).read()),
            nbformat.v4.new_code_cell(
                "import minivod\n"
                "from minivod.data.vid import VIDDataset\n"
                "print('minivod from', minivod.__file__)\n"
                "print('ROOT', ROOT, '| DEVICE', DEVICE)\n"
                "print(VIDDataset(ROOT, 'val'))")]
nbformat.write(nb, sys.argv[1])
PY
run_case() {  # folder, then extra environment; prints the cells' outputs, or why nbconvert failed
    local dir=$1 rc=0
    shift
    (cd "$dir" && env "$@" "$WORK/venv/bin/jupyter" nbconvert --to notebook --execute first_cell_check.ipynb \
        --output executed.ipynb --allow-errors --ExecutePreprocessor.timeout=1800 >"$dir/nbconvert.log" 2>&1) || rc=$?
    if [ $rc != 0 ] || ! [ -f "$dir/executed.ipynb" ]; then
        echo "nbconvert failed (exit code $rc):"
        tail -20 "$dir/nbconvert.log"
        return 0
    fi
    "$WORK/venv/bin/python" "$WORK/outputs.py" "$dir/executed.ipynb"
}
cat > "$WORK/outputs.py" <<'PY'
# The cells' outputs, one line each: a progress bar's last state only, no blank lines, and not the
# notes this machine's pip configuration prints about its local indexes.
import json
import re
import sys

lines = []
for cell in json.load(open(sys.argv[1]))["cells"]:
    for o in cell.get("outputs", []):
        if o["output_type"] == "error":
            lines.append(o["ename"] + ": " + o["evalue"])
        elif o["output_type"] == "stream":
            text = "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
            for line in re.split(r"[\r\n]+", text):
                if not line.strip() or "WARNING: Location" in line:
                    continue
                bar = re.match(r"^([^:]+): +\d+%\|", line)
                if bar and lines and lines[-1].startswith(bar.group(1) + ":"):
                    lines[-1] = line
                else:
                    lines.append(line)
print("\n".join(lines))
PY
t1=$SECONDS
cp "$WORK/clone/notebooks/first_cell_check.ipynb" "$WORK/"
case1=$(run_case "$WORK" PATH="$WORK/venv/bin:$PATH")
t_case1=$((SECONDS - t1))
"$WORK/venv/bin/pip" uninstall --quiet -y minivod
mkdir "$WORK/elsewhere"
cp "$WORK/clone/notebooks/first_cell_check.ipynb" "$WORK/elsewhere/"
t2=$SECONDS
case2=$(run_case "$WORK/elsewhere" PATH="$WORK/venv/bin:$PATH" MINIVOD_SOURCE="$WORK/clone" \
        MINIVOD_DATA="$WORK/cache/data_small")
t_case2=$((SECONDS - t2))
differ=$(diff -rq "$WORK/cache/data_small" "$REPO/data_small" 2>&1 | head -5 || true)
if [ -z "$differ" ]; then same="identical"; else same="DIFFERENT:
$differ"; fi
report="# The notebooks' first cell on a fresh runtime (bash scripts/first_cell_check.sh), $(date -u +%Y-%m-%d)

A new venv with only \`pip install jupyter\` ($t_jupyter s), the committed repository cloned.

## case 1: notebook in the folder the repository was cloned into, as on Colab ($t_case1 s: installing minivod and PyTorch)
$case1
## case 2: notebook alone, MINIVOD_SOURCE=<clone>, minivod uninstalled first ($t_case2 s: install + generating data_small)
$case2
generated data_small against the committed one: $same"
echo "$report" | tee "$OUT"
case "$case1$case2" in *Error*|*Exception*|*"nbconvert failed"*) echo "FAILED: a cell raised" >&2; exit 1;; esac
[ "$same" = identical ] || { echo "FAILED: generated data_small differs from the committed one" >&2; exit 1; }
grep -q "working in $WORK/clone/notebooks" <<<"$case1" && grep -q "ROOT ../data_small" <<<"$case1" \
    && grep -q "ROOT $WORK/cache/data_small" <<<"$case2" || {
    echo "FAILED: data_small not found where expected" >&2; exit 1; }
