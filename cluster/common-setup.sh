#!/usr/bin/env bash
# Installs tokenq on a cluster node from the copy that file_mounts put in ~/tokenq. Used by every YAML here.
# CPU nodes take the CPU wheel of PyTorch; GPU nodes take the CUDA build that `pip install torch` selects.
set -euo pipefail
cd ~/tokenq
python3 -m venv ~/tokenq-venv
. ~/tokenq-venv/bin/activate
python -m pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1; then
  python -m pip install -q torch
else
  python -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu || python -m pip install -q torch
fi
python -m pip install -q -e .
