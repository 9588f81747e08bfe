"""Notebook 00's scrubber in a real browser (``scripts/browser_check.sh``), and the check's own parts."""
import importlib.util
import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("browser_check", REPO / "benchmarks" / "browser_check.py")
browser_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(browser_check)


def _png(array):
    buf = BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_changed_share_counts_pixels_that_differ():
    a = np.zeros((10, 20, 3))
    b = a.copy()
    b[:5, :4] = 200          # 20 of 200 pixels
    b[9, 19] = 10            # below the 16-level tolerance (JPEG-like noise)
    assert browser_check.changed_share(_png(a), _png(b)) == pytest.approx(0.1)
    assert browser_check.changed_share(_png(a), _png(a)) == 0.0
    assert browser_check.changed_share(_png(a), _png(np.zeros((5, 5, 3)))) == 1.0


def test_dry_run_finds_the_scrubber_cell(tmp_path):
    run = subprocess.run(["bash", "scripts/browser_check.sh", "--dry-run"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "scrubber cell found (2 IntSliders)" in run.stdout
    broken = tmp_path / "00.ipynb"
    broken.write_text('{"cells": [{"cell_type": "code", "source": ["print(1)"]}]}')
    with pytest.raises(SystemExit, match="expected one cell with widgets.interact"):
        browser_check.scrubber_cell(broken)


@pytest.mark.browser
def test_scrubber_moves_in_a_real_browser(tmp_path):
    missing = browser_check.missing_tools()
    if missing:
        pytest.skip("no browser here (bash scripts/browser_check.sh installs it): missing " + ", ".join(missing))
    result = browser_check.run_check(tmp_path)
    assert result["passed"], result
    assert result["slider_values_before"][0] == "0" and result["slider_values_after"][0] != "0"
    assert (tmp_path / "browser_check_before.png").is_file() and (tmp_path / "browser_check_after.png").is_file()
