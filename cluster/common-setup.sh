#!/usr/bin/env bash
# Installs tokenq into ~/tokenq-venv on a cluster node, from the copy of the repository that file_mounts put there
# (the one holding this script, wherever the YAML mounts it). Used by every YAML here.
#
# PyTorch is installed first, with the pip arguments in TOKENQ_TORCH, because tokenq's own requirement (torch>=2.4)
# would take PyPI's Linux build, which is the large CUDA one. Unset, nodes with an NVIDIA driver take that CUDA build
# and the others the CPU wheel from PyTorch's index. To choose, prefix the YAML's setup command, e.g.
#   TOKENQ_TORCH="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu121" bash .../common-setup.sh
#   TOKENQ_TORCH="torch==2.13.0" bash .../common-setup.sh   # from wherever pip's own configuration points
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv ~/tokenq-venv  # Ubuntu: needs the python3-venv package
. ~/tokenq-venv/bin/activate
python -m pip install -q --upgrade pip
if [ -z "${TOKENQ_TORCH:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    TOKENQ_TORCH="torch"
  else
    TOKENQ_TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
  fi
fi
# Unquoted on purpose: the variable holds several pip arguments.
# shellcheck disable=SC2086
python -m pip install -q $TOKENQ_TORCH
python -m pip install -q -e .
# `ray submit` runs `python <script>` and `ray down` runs `ray stop` in a login shell where Ray sources ~/.bashrc
# and nothing of ours: the venv must be active there. Ray's shell is interactive (bash -i), so a line at the end
# of ~/.bashrc is read even past Ubuntu's early return for non-interactive shells.
line='. ~/tokenq-venv/bin/activate  # added by tokenq cluster/common-setup.sh'
grep -qxF "$line" ~/.bashrc 2>/dev/null || echo "$line" >>~/.bashrc
