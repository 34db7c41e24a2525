"""The entry script for `ray submit cluster/<x>.yaml cluster/train_job.py -- <tokenq train arguments>`.

It runs on the head node (with the tokenq that cluster/common-setup.sh installed there) and joins the running
cluster (address "auto") unless the arguments name one.
"""

import os
import sys

from tokenq.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--address" not in args and not os.environ.get("RAY_ADDRESS"):
        args += ["--address", "auto"]
    sys.exit(main(["train", *args]))
