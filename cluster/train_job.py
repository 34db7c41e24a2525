"""The entry script for `ray submit cluster/<x>.yaml cluster/train_job.py -- <tokenq train arguments>`.

It runs on the head node and joins the running cluster (address "auto") unless the arguments name one.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, also when run from a copy

from tokenq.cli import main  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--address" not in args and not os.environ.get("RAY_ADDRESS"):
        args += ["--address", "auto"]
    sys.exit(main(["train", *args]))
