"""`tokenq eval`: rebuild a run from its directory, load a checkpoint safely, evaluate greedily, write eval.json."""

from __future__ import annotations

import json
from pathlib import Path

from distributed.components import build_spec, write_json
from distributed.config import ConfigError, config_from_dict
from distributed.recorder import full_eval
from learner.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from learner.model import QNetwork


def load_run_config(run_dir: Path):
    path = Path(run_dir) / "config.json"
    try:
        tree = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} is not a tokenq run directory (no config.json)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    return config_from_dict(tree)


def evaluate_run(run_dir: Path, num_prompts: int | None = None, checkpoint: Path | None = None) -> dict:
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if num_prompts is not None:
        if num_prompts < 1:
            raise ConfigError(f"--prompts must be at least 1, got {num_prompts}")
        cfg.task.eval_prompts = num_prompts
    spec = build_spec(cfg)
    path = checkpoint or latest_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise CheckpointError(f"{run_dir} has no checkpoints to evaluate")
    state = load_checkpoint(path)
    net = QNetwork(spec.net_cfg)
    try:
        net.load_state_dict(state["learner"]["online"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this run's model ({str(err).splitlines()[0][:100]})"
        ) from None
    result = full_eval(spec, net.eval())
    result["checkpoint"] = str(path)
    result["learner_updates"] = int(state["learner"]["updates"])
    write_json(run_dir / "eval.json", result)
    return result
