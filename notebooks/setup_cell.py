# Set-up: prints nothing in a checkout with minivod installed. On a fresh runtime (Colab, Kaggle, a lab's
# JupyterHub) it finds the repository (around the working folder, or cloned into it: then it works from its
# notebooks/ folder) and pip-installs minivod from it, or from $MINIVOD_SOURCE (a git URL, a wheel); then it
# finds data_small (or generates it) and picks the device.
import importlib.util, os, subprocess, sys
from pathlib import Path

here = Path.cwd()
repo = next((p for p in (here, *here.parents, *sorted(here.glob("*/")))
             if (p / "minivod" / "__init__.py").is_file() and (p / "notebooks").is_dir()), None)
if repo is not None and repo not in (here, *here.parents):  # a clone in the working folder (Colab's /content)
    os.chdir(repo / "notebooks")
    print(f"working in {repo / 'notebooks'}")
if importlib.util.find_spec("minivod") is None:
    source = os.environ.get("MINIVOD_SOURCE") or (str(repo) if repo else None)
    if source is None:
        raise RuntimeError("minivod is not installed: clone its repository (into this folder, or open the notebook "
                           "inside it), or set MINIVOD_SOURCE to something pip installs (a git URL, a wheel)")
    print(f"installing minivod from {source} (PyTorch comes with it: a few minutes)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()
from minivod.runtime import notebook_setup

ROOT, DEVICE = notebook_setup()  # the data_small root; "cuda" when there is a GPU, else "cpu"
