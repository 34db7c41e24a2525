"""`--mode local` (the default) and cluster runs: the application's side of Ape-X on Ray.

It builds what the Ray driver (distributed/driver.py) is handed: the run spec, the recorder that owns the run
directory, and the factories the hosts build their workers and learner with.
"""

from __future__ import annotations

from pathlib import Path

from distributed.driver import train_distributed
from distributed.launch import ray_mode
from tokenq.build import RunSpec, build_spec, host_factories
from tokenq.config import Config
from tokenq.recorder import RunRecorder
from tokenq.signals import StopRequest


def train_local(
    cfg: Config,
    run_dir: Path,
    config_name: str = "",
    spec: RunSpec | None = None,
    address: str | None = None,
    resume: dict | None = None,
) -> dict:
    """Run Ape-X on Ray (a local instance, or the cluster at `address` / RAY_ADDRESS) and return the summary.
    `resume` is a loaded checkpoint of this run directory to continue from."""
    spec = spec or build_spec(cfg)
    rec = RunRecorder(spec, run_dir, config_name, mode=ray_mode(address))
    with StopRequest() as stop_request:
        return train_distributed(cfg, spec, rec, host_factories(cfg), address, resume, stop_request)
