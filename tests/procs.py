"""Runs of the installed `tokenq` command (the console script in this environment's bin directory) in their own
processes, with no repository path injected: what a user's shell runs; and `run_main`, the same entry point called
in the test's own process."""

import os
import subprocess
import sys
import time
from pathlib import Path

TOKENQ = Path(sys.executable).parent / "tokenq"


def cli(*args: str) -> list[str]:
    assert TOKENQ.exists(), f"{TOKENQ} is missing: install the project (pip install -e .) in this environment"
    return [str(TOKENQ), *args]


def clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH: modules resolve as an installed project's do."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_cli(*args: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`tokenq ARGS` to completion, its output captured as text."""
    return subprocess.run(cli(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=clean_env())


def run_main(args, capsys) -> tuple[int, str, str]:
    """`tokenq ARGS` through tokenq.cli.main in this process: (exit code, stdout, stderr), read from pytest's capsys."""
    from tokenq.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def start_train(run: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """`tokenq train --run-dir RUN ARGS` in the background; its output goes to RUN.log (a file, not a pipe: a full
    pipe would stall the run)."""
    log = run.parent / f"{run.name}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cli("train", "--run-dir", str(run), *args), stdout=f, stderr=f, env=clean_env())
    return proc, log


def wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    """Until `path` exists; fails if the run ends first or takes longer than `timeout`."""
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path.name} appeared:\n{log.read_text()[-3000:]}"
        assert time.time() - t0 < timeout, f"{path} did not appear"
        time.sleep(0.05)
