"""`tokenq eval`: rebuild a run from its directory, load a checkpoint safely, evaluate greedily, write eval.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actors.rollout import generate
from actors.tasks import TaskError
from learner.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from learner.model import make_network
from learner.qfunction import QFunction
from tokenq.build import build_spec
from tokenq.config import ConfigError, config_from_dict
from tokenq.evaluation import full_eval
from tokenq.run_dir import read_run_config, write_json
from tokenq.text_setup import init_checkpoint, load_weights


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
    net = spec.acting_network()
    load_weights(net, state, path)
    return spec, net.eval(), state, path


def generate_texts(spec, net: QFunction, prompts: list[str], source: str = "prompt") -> list[dict]:
    """Greedy generations, each with its tokens and per-token V(s_t), Q(s_t, a_t) and reward r_t."""
    try:
        ids = spec.task.encode_prompts(list(prompts), source)
    except TaskError as err:
        raise TaskError(str(err).replace(f"{source} line 1 ", f"{source} ")) from None
    batch = generate(net, spec.task, ids, 0.0, np.random.default_rng(0), spec.policy.greedy())
    tok = spec.task.tokenizer
    out = []
    for i, prompt in enumerate(prompts):
        n = int(batch.lengths[i])
        actions = batch.actions[i, :n]
        out.append(
            {
                "prompt": prompt,
                "generation": tok.decode(actions, skip_special=False),
                "tokens": [tok.decode([a], skip_special=False) for a in actions],
                "token_ids": [int(a) for a in actions],
                "values": [float(v) for v in batch.values[i, :n]],
                "q_taken": [float(v) for v in batch.q_taken[i, :n]],
                "rewards": [float(v) for v in batch.rewards[i, :n]],
                "return": float(batch.rewards[i, :n].sum()),
            }
        )
    return out


def generate_one(run_dir: Path, prompt: str, checkpoint: Path | None = None) -> dict:
    """Greedy generation for one prompt (see generate_texts)."""
    spec, net, _, _ = load_run(run_dir, checkpoint)
    return generate_texts(spec, net, [prompt], "--prompt")[0]


def evaluate_run(run_dir: Path, num_prompts: int | None = None, checkpoint: Path | None = None) -> dict:
    run_dir = Path(run_dir)
    spec, net, state, path = load_run(run_dir, checkpoint, num_prompts)
    result = full_eval(spec, net)
    init_dir = spec.cfg.init.from_run
    from_run = bool(init_dir) and Path(init_dir).resolve() != run_dir.resolve()
    if spec.cfg.init.from_hf or from_run:  # the warm-start policy on the same prompts (from_hf's: V at 0)
        base = make_network(spec.net_cfg)
        if from_run:
            load_weights(base, init_checkpoint(Path(init_dir)), init_dir)
        result["baseline"] = full_eval(spec, base.eval(), num_samples=2)
    result["checkpoint"] = str(path)
    result["learner_updates"] = state.updates
    write_json(run_dir / "eval.json", result)
    return result
