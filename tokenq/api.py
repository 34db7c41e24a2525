"""The Python API: `tokenq.train(config, run_dir, mode)` and `tokenq.load(run_dir).generate(prompts)`."""

from __future__ import annotations

import logging
from pathlib import Path

from tokenq.config import Config, ConfigError, load_config

log = logging.getLogger("tokenq")


def run_training(
    cfg: Config,
    run_dir: Path,
    config_name: str = "",
    mode: str = "local",
    address: str | None = None,
    resume: dict | None = None,
) -> dict:
    """Train in `mode` ("serial": one process; "local": Ape-X on Ray) and return the summary."""
    from tokenq.build import build_spec, check_resume_base
    from tokenq.install import check_distributed_is_ours

    problem = check_distributed_is_ours()
    if problem:
        raise ConfigError(problem)
    spec = build_spec(cfg)
    if resume is not None:
        check_resume_base(spec, resume, run_dir)
    log.info("tokenq train: config %s, mode %s, run dir %s", config_name, mode, run_dir)
    if mode == "serial":
        from tokenq.serial import train_serial

        return train_serial(cfg, run_dir, config_name, spec, resume=resume)
    if mode != "local":
        raise ConfigError(f"mode must be local or serial, got {mode!r}")
    from tokenq.local import train_local

    return train_local(cfg, run_dir, config_name, spec, address, resume=resume)


def train(
    config: Config | str = "reverse",
    run_dir: str | Path = "runs/api",
    mode: str = "local",
    overrides: list[str] | None = None,
) -> dict:
    """Train a Q-network and return the run's summary (the contents of RUN_DIR/summary.json).

    `config` is a Config, a preset name or a YAML path; `overrides` are `section.key=value` strings. A run
    directory holds one run: continue one with `tokenq train --resume RUN_DIR`.
    """
    from tokenq.run_dir import check_new_run_dir

    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    name = "custom" if isinstance(config, Config) else Path(config).stem
    run_dir = Path(run_dir)
    check_new_run_dir(cfg, run_dir)
    return run_training(cfg, run_dir, name, mode)


class Policy:
    """A trained run's greedy policy: generate text with the Q-network, per-token V(s) and Q(s, a)."""

    def __init__(self, run_dir: str | Path, checkpoint: str | Path | None = None):
        from tokenq.evaluate_run import load_run

        self.run_dir = Path(run_dir)
        self.spec, self.net, state, self.checkpoint = load_run(self.run_dir, Path(checkpoint) if checkpoint else None)
        self.updates = state.updates

    def generate(self, prompts: list[str] | str) -> list[dict]:
        """Greedy generations, one dict per prompt: `generation` (text), `tokens`, `token_ids`, `values` (V(s_t)),
        `q_taken` (Q(s_t, a_t)), `rewards` (r_t under the run's task) and `return`."""
        from tokenq.evaluate_run import generate_texts

        return generate_texts(self.spec, self.net, [prompts] if isinstance(prompts, str) else list(prompts))


def load(run_dir: str | Path, checkpoint: str | Path | None = None) -> Policy:
    """The newest checkpoint of a run (of either mode, or a `tokenq pretrain` run) as a Policy."""
    return Policy(run_dir, checkpoint)
