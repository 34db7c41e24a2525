"""The GPU learner benchmark (tokenq/bench/gpu.py), runnable from a bare checkout: `python scripts/gpu_bench.py --out
gpu.json`. It puts the repository on sys.path itself, so a GPU machine needs only PyTorch and NumPy."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tokenq.bench.gpu import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
