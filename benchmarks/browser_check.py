"""Notebook 00's ipywidgets scrubber, checked in a real browser.

nbval compares a widget's stored text, not what a browser draws, so a scrubber that no longer
moves between JupyterLab and ipywidgets versions passes it. This script starts JupyterLab on
localhost with a token, opens a copy of notebook 00 in headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven by Selenium; nothing is downloaded), runs every cell, drags the
frame slider of the scrubber, and checks from two screenshots of the frame that it changed.

    python benchmarks/browser_check.py [--out benchmarks/results]   # scripts/browser_check.sh sets it up
    python benchmarks/browser_check.py --dry-run                      # the checks that need no browser

Writes ``browser_check_before.png``, ``browser_check_after.png``, ``browser_check.json`` and
``browser_check.md`` (versions, slider values, share of pixels that changed) under ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from io import BytesIO
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_data_small.ipynb"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
MIN_CHANGED = 0.005  # share of the frame's pixels that must change when the slider moves


def scrubber_cell(notebook=NOTEBOOK) -> str:
    """The source of the cell that builds the scrubber (``widgets.interact`` with an IntSlider)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    found = ["".join(c["source"]) for c in cells
             if c["cell_type"] == "code" and "widgets.interact(" in "".join(c["source"])]
    if len(found) != 1 or "IntSlider" not in found[0]:
        raise SystemExit(f"{notebook}: expected one cell with widgets.interact(... IntSlider ...), found {len(found)}")
    return found[0]


def missing_tools() -> list[str]:
    """What the check needs that this machine lacks (empty when it can run)."""
    missing = [f"{p} (apt-get install chromium chromium-driver)" for p in (CHROMIUM, CHROMEDRIVER)
               if not Path(p).exists()]
    for module in ("selenium", "jupyterlab", "ipywidgets"):
        try:
            version(module)
        except Exception:
            missing.append(f"{module} (pip install {module})")
    return missing


def changed_share(png_a: bytes, png_b: bytes) -> float:
    """Share of pixels differing by more than 16 levels in some channel (1.0 when the sizes differ)."""
    from PIL import Image

    a = np.asarray(Image.open(BytesIO(png_a)).convert("RGB")).astype(int)  # (H, W, 3)
    b = np.asarray(Image.open(BytesIO(png_b)).convert("RGB")).astype(int)
    if a.shape != b.shape:
        return 1.0
    return float((np.abs(a - b).max(axis=2) > 16).mean())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab serving ``folder`` on localhost, with the app exposed as ``window.jupyterapp``."""
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.disable_check_xsrf=True"] + (["--allow-root"] if os.geteuid() == 0 else [])  # containers
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(folder / ".jupyter-config")}  # no user settings
    lab = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(folder / "lab.log", "w"), env=env)
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=2)
            return lab
        except OSError:
            if lab.poll() is not None:
                raise SystemExit(f"JupyterLab exited: see {folder / 'lab.log'}")
            time.sleep(0.5)
    lab.kill()
    raise SystemExit("JupyterLab did not answer within 60 s")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_for(driver, script: str, seconds: float, what: str):
    """Poll a JavaScript expression until it is truthy; its value."""
    end = time.time() + seconds
    while time.time() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"browser check: timed out after {seconds:.0f} s waiting for {what}")


NOTEBOOK_READY = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
return !!(k && w.context.isReady && k.connectionStatus === 'connected' && k.status === 'idle');
"""
FRAME_SRC = "const i = document.querySelector('.widget-interact img'); return i ? i.src : null;"
READOUTS = ("return Array.from(document.querySelectorAll('.widget-interact .widget-readout'))"
            ".map(r => r.textContent.trim());")


def run_check(out: Path) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="minivod-browser-"))
    # a copy, so that JupyterLab's autosave cannot touch the committed notebook; the set-up cell finds
    # data_small beside the installed package (an editable install of this checkout)
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(work, port, token)
    driver = None
    try:
        driver = browser()
        driver.set_script_timeout(900)
        driver.get(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}")
        wait_for(driver, NOTEBOOK_READY, 180, "the notebook and its kernel")
        t_open = time.time() - t0
        ok = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.jupyterapp.commands.execute('notebook:run-all-cells').then(r => done(String(r)), e => done('error: ' + e));")
        wait_for(driver, NOTEBOOK_READY, 300, "the kernel to finish the notebook")
        t_run = time.time() - t0 - t_open
        if ok != "true":
            raise SystemExit(f"browser check: running the notebook's cells failed ({ok}); see JupyterLab's output")
        before_src = wait_for(driver, FRAME_SRC, 60, "the scrubber's frame image")
        image = driver.find_element(By.CSS_SELECTOR, ".widget-interact img")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
        time.sleep(1)
        before_png, before_values = image.screenshot_as_png, driver.execute_script(READOUTS)
        handle = driver.find_elements(By.CSS_SELECTOR, ".widget-interact .widget-slider .noUi-handle")[0]
        ActionChains(driver).click_and_hold(handle).move_by_offset(90, 0).release().perform()  # the frame slider t
        wait_for(driver, f"const i = document.querySelector('.widget-interact img'); "
                         f"return !!(i && i.src !== {json.dumps(before_src)} && i.complete);", 60, "a new frame")
        time.sleep(1)
        image = driver.find_element(By.CSS_SELECTOR, ".widget-interact img")
        after_png, after_values = image.screenshot_as_png, driver.execute_script(READOUTS)
    finally:
        if driver is not None:
            driver.quit()
        lab.terminate()
        lab.wait(timeout=30)
    (out / "browser_check_before.png").write_bytes(before_png)
    (out / "browser_check_after.png").write_bytes(after_png)
    share = changed_share(before_png, after_png)
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    result = {
        "command": "bash scripts/browser_check.sh",
        "passed": bool(share >= MIN_CHANGED and before_values[:1] != after_values[:1]),
        "slider_values_before": before_values, "slider_values_after": after_values,
        "changed_pixel_share": round(share, 4), "min_changed_pixel_share": MIN_CHANGED,
        "seconds": {"open": round(t_open, 1), "run_all_cells": round(t_run, 1), "total": round(time.time() - t0, 1)},
        "versions": {"jupyterlab": version("jupyterlab"), "ipywidgets": version("ipywidgets"),
                     "selenium": version("selenium"), "chromium": chromium},
    }
    (out / "browser_check.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# Notebook 00's scrubber in a real browser (`bash scripts/browser_check.sh`)", "",
          f"JupyterLab {result['versions']['jupyterlab']}, ipywidgets {result['versions']['ipywidgets']}, "
          f"{chromium} (headless), Selenium {result['versions']['selenium']}.", "",
          "| step | result |", "| --- | --- |",
          f"| open notebook 00, kernel ready | {t_open:.0f} s |",
          f"| run all cells | {t_run:.0f} s |",
          f"| slider readouts (t, video) before / after the drag | {before_values} / {after_values} |",
          f"| pixels of the frame that changed | {100 * share:.1f}% (at least {100 * MIN_CHANGED:.1f}% required) |",
          f"| verdict | {'passed' if result['passed'] else 'FAILED'} in {result['seconds']['total']:.0f} s |", "",
          "![before](browser_check_before.png) ![after](browser_check_after.png)", ""]
    (out / "browser_check.md").write_text("\n".join(md))
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where the screenshots and results go")
    ap.add_argument("--dry-run", action="store_true",
                    help="check what needs no browser (the scrubber cell is there; which tools are missing)")
    args = ap.parse_args(argv)
    cell = scrubber_cell()
    if args.dry_run:
        print(f"browser check (dry run): scrubber cell found ({cell.count('widgets.IntSlider(')} IntSliders); "
              f"missing for a real run: {', '.join(missing_tools()) or 'nothing'}")
        return 0
    missing = missing_tools()
    if missing:
        print("browser check: missing " + ", ".join(missing), file=sys.stderr)
        return 2
    return 0 if run_check(Path(args.out))["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
