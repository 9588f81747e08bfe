# Set-up: prints nothing in a checkout with minivod installed. On a fresh runtime (Colab, Kaggle, a lab's
# JupyterHub) it pip-installs minivod from the repository this notebook sits in, or from $MINIVOD_SOURCE
# (anything pip installs: a git URL, a wheel); then it finds data_small (or generates it) and picks the device.
import importlib.util, os, subprocess, sys
from pathlib import Path

if importlib.util.find_spec("minivod") is None:
    source = os.environ.get("MINIVOD_SOURCE") or next(
        (str(p) for p in (Path.cwd(), *Path.cwd().parents) if (p / "minivod" / "__init__.py").is_file()), None)
    if source is None:
        raise RuntimeError("minivod is not installed: open this notebook in a clone of its repository, "
                           "or set MINIVOD_SOURCE to something pip installs (a git URL, a wheel)")
    print(f"installing minivod from {source} (PyTorch comes with it: a few minutes)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()
from minivod.runtime import notebook_setup

ROOT, DEVICE = notebook_setup()  # the data_small root; "cuda" when there is a GPU, else "cpu"
