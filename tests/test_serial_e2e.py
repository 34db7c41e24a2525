"""End-to-end serial runs on tiny budgets, checked against ground truth."""

import json

import pytest
import torch

from learner.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from tokenq.config import load_config
from tokenq.evaluate_run import evaluate_run
from tokenq.serial import train_serial


@pytest.mark.slow
def test_tiny_learns_q_star(tmp_path):
    cfg = load_config("tiny", ["train.total_updates=1000"])
    summary = train_serial(cfg, tmp_path, "tiny")
    assert summary["eval"]["q_star_max_abs_error"] <= 0.05
    assert summary["eval"]["success_rate"] == 1.0
    assert json.loads((tmp_path / "summary.json").read_text())["learner_updates"] == 1000


@pytest.mark.parametrize("n", [1, 3])
def test_tiny_learns_the_soft_q_star_with_the_soft_backup(n, tmp_path):
    """learner.backup=soft: the neural learner against the exact soft Q* of the entropy-regularised MDP (a uniform
    reference), which the run's evaluation compares it with. With n = 3 from uniformly random actions, the inner
    steps' KL cost is what keeps Q* the fixed point (soft_q_loss)."""
    over = ["train.total_updates=1000", "learner.backup=soft", "learner.beta=0.3", f"learner.n_step={n}"]
    cfg = load_config("tiny", over)
    summary = train_serial(cfg, tmp_path, "tiny")
    assert summary["eval"]["q_star_max_abs_error"] <= 0.05
    assert summary["eval"]["success_rate"] == 1.0


@pytest.mark.slow
def test_reverse_reaches_target_and_eval_reloads_it(tmp_path):
    cfg = load_config("reverse", ["train.stop_at_target=true", "train.eval_every=50", "train.max_seconds=60"])
    summary = train_serial(cfg, tmp_path, "reverse")
    for key in ("env_steps", "learner_updates", "transitions_trained", "wall_time_s", "time_to_target_s"):
        assert summary[key] is not None, key
    assert summary["eval"]["success_rate"] >= 0.95
    assert summary["eval"]["optimal_mean_return"] == 7.0
    assert summary["eval"]["q_star_max_abs_error"] is None
    result = evaluate_run(tmp_path, num_prompts=200)
    assert result["success_rate"] >= 0.95 and result["num_prompts"] == 200
    assert (tmp_path / "eval.json").exists()


def test_checkpoint_round_trip_and_truncation(tmp_path):
    cfg = load_config(
        "reverse", ["train.total_updates=20", "replay.min_size_to_sample=32", "train.checkpoint_every=10"]
    )
    train_serial(cfg, tmp_path, "reverse")
    path = latest_checkpoint(tmp_path / "checkpoints")
    state = load_checkpoint(path)
    assert state.updates == 20 and state.config["task"]["name"] == "reverse"
    assert isinstance(state.learner["online"]["head.weight"], torch.Tensor)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated.pt is corrupted or truncated"):
        load_checkpoint(truncated)
