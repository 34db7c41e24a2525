"""scripts/gpu_bench.py in a fresh venv holding only PyTorch and NumPy, as on a GPU machine where nothing else is
installed: what its docstring promises. This environment has the project's other dependencies (Ray, msgpack, PyYAML,
TensorBoard, matplotlib) installed, so only a venv without them shows an import that needs one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gpu_figures import GPU_SCRIPT, check_tiny_cpu_figures

# The CPU wheel that this machine's pip takes from local disk (its pip config); numpy is no dependency of torch's.
TORCH = "2.13.0"


@pytest.mark.slow
def test_gpu_script_runs_tiny_in_a_venv_of_torch_and_numpy_alone(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # pip keeps this environment (its config and find-links may come from variables), less what points into ours.
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    # This numpy's version: already on disk or in pip's cache, and known to work with this torch.
    install = [python, "-m", "pip", "install", "-q", f"torch=={TORCH}", f"numpy=={np.__version__}"]
    subprocess.run(install, check=True, env=pip_env, timeout=900)
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, env=pip_env, check=True
    ).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert {"torch", "numpy"} <= installed
    assert not installed & {"tokenq", "ray", "msgpack", "pyyaml", "tensorboard", "matplotlib"}, installed

    # No PYTHONPATH and a working directory outside the repository: the script finds the repository's modules by
    # its own sys.path entry, and everything else in the venv.
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [python, str(GPU_SCRIPT), "--device", "cpu", "--tiny", "--out", "gpu.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(Path(tmp_path / "gpu.json").read_text())
    assert figures["torch"].split("+")[0] == TORCH
    check_tiny_cpu_figures(figures, figures["torch"], hf_skipped="transformers")
