"""`tokenq eval`: rebuild a run from its directory, load a checkpoint safely, evaluate greedily, write eval.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actors.rollout import generate
from actors.tasks import TaskError
from distributed.components import build_spec, write_json
from distributed.config import ConfigError, config_from_dict
from distributed.recorder import full_eval
from distributed.text_setup import init_checkpoint, load_weights, read_run_config
from learner.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from learner.model import QNetwork


def load_run_config(run_dir: Path):
    return config_from_dict(read_run_config(Path(run_dir)))


def load_run(run_dir: Path, checkpoint: Path | None = None, num_prompts: int | None = None):
    """(spec, network loaded from the checkpoint, checkpoint state) for a train or pretrain run directory."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if (run_dir / "tokenizer.json").exists() and not cfg.init.from_run:
        cfg.init.from_run = str(run_dir)  # a pretrain run is its own vocabulary and prior
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
    load_weights(net, state, path)
    return spec, net.eval(), state, path


def generate_one(run_dir: Path, prompt: str, checkpoint: Path | None = None) -> list[dict]:
    """Greedy generation for one prompt: each token with V(s_t), Q(s_t, a_t) and its reward."""
    spec, net, _, _ = load_run(run_dir, checkpoint)
    try:
        prompts = spec.task.encode_prompts([prompt], "--prompt")
    except TaskError as err:
        raise TaskError(str(err).replace("--prompt line 1 ", "--prompt ")) from None
    batch = generate(net, spec.task, prompts, 0.0, np.random.default_rng(0))
    tok = spec.task.tokenizer
    return [
        {"token": tok.decode([a], skip_special=False), "value": float(v), "q": float(q), "reward": float(r)}
        for a, v, q, r in zip(batch.actions[0], batch.values[0], batch.q_taken[0], batch.rewards[0])
    ][: int(batch.lengths[0])]


def evaluate_run(run_dir: Path, num_prompts: int | None = None, checkpoint: Path | None = None) -> dict:
    run_dir = Path(run_dir)
    spec, net, state, path = load_run(run_dir, checkpoint, num_prompts)
    result = full_eval(spec, net)
    init_dir = spec.cfg.init.from_run
    if init_dir and Path(init_dir).resolve() != run_dir.resolve():
        # the warm-start policy, on the same prompts
        base = QNetwork(spec.net_cfg)
        load_weights(base, init_checkpoint(Path(init_dir)), init_dir)
        result["baseline"] = full_eval(spec, base.eval(), num_samples=2)
    result["checkpoint"] = str(path)
    result["learner_updates"] = int(state["learner"]["updates"])
    write_json(run_dir / "eval.json", result)
    return result
