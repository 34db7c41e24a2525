"""`--mode serial`: actor, replay and learner in one process. For debugging, tests, and as the baseline the
distributed mode must beat. The loop reads as numbered phases, each timed."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from actors.rollout import RolloutWorker
from actors.tasks import PromptSource
from distributed.components import EvalTracker, PhaseTimer, RunSpec, build_spec, write_json
from distributed.config import Config
from distributed.evaluation import greedy_eval, q_star_errors
from distributed.replay import ReplayShard
from learner.checkpoint import save_checkpoint
from learner.learner import Learner

log = logging.getLogger("tokenq")


def beta_at(cfg: Config, updates: int) -> float:
    """Importance-sampling exponent, annealed linearly from replay.beta to 1 over the run (Schaul et al. 2016)."""
    frac = min(1.0, updates / cfg.train.total_updates)
    return cfg.replay.beta + (1.0 - cfg.replay.beta) * frac


def full_eval(spec: RunSpec, net) -> dict:
    """Greedy evaluation on the held-out prompts, plus the distance to Q* where the task has it."""
    result = greedy_eval(net, spec.task, spec.heldout)
    if spec.q_star is not None:
        result["q_star_max_abs_error"], result["q_star_mean_abs_error"] = q_star_errors(net, spec.q_star)
    else:
        result["q_star_max_abs_error"] = result["q_star_mean_abs_error"] = None
    return result


def progress_line(
    env_steps: int, updates: int, recent_returns: list[float], success: float | None, train_s: float
) -> str:
    ret = f"{np.mean(recent_returns):6.3f}" if recent_returns else "   n/a"
    succ = "n/a" if success is None else f"{success:.3f}"
    return (
        f"env_steps {env_steps:>9,}  updates {updates:>6,}  return {ret}  greedy_success {succ}  "
        f"env_steps/s {env_steps / max(train_s, 1e-9):8.0f}  t {train_s:6.1f}s"
    )


def train_serial(cfg: Config, run_dir: Path, config_name: str = "", spec: RunSpec | None = None) -> dict:
    spec = spec or build_spec(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    if cfg.train.torch_threads:
        torch.set_num_threads(cfg.train.torch_threads)
    seed = cfg.train.seed
    task = spec.task
    learner = Learner(cfg.learner, spec.net_cfg, seed=seed)
    log.info("Q-network: %s, %d parameters, on %s", spec.net_cfg.arch, learner.online.num_parameters(), learner.device)
    worker = RolloutWorker(
        task,
        spec.net_cfg,
        PromptSource(task, seed + 1, spec.heldout),
        cfg.actors.epsilon,
        cfg.actors.batch_size,
        cfg.learner.gamma,
        cfg.learner.n_step,
        seed + 2,
    )
    worker.set_weights(learner.get_weights(), 0)
    replay = ReplayShard(
        cfg.replay.capacity, task.prompt_len, task.max_steps, cfg.replay.alpha, seed + 3, cfg.replay.priority_eps
    )
    timer, tracker = PhaseTimer(), EvalTracker(cfg.task.target_success)
    recent_returns: list[float] = []
    last_success: float | None = None
    credit = 0.0  # transitions the learner may still sample under the samples-per-insert ratio
    next_log = time.perf_counter() + cfg.train.log_every_s
    metrics: dict[str, float] = {}
    stop = False

    def counters() -> dict:
        return {"env_steps": worker.env_steps, "episodes": worker.episodes, "train_s": timer.train_s}

    while not stop and learner.updates < cfg.train.total_updates and timer.train_s < cfg.train.max_seconds:
        # 1. Rollout: one batch of episodes with the worker's (possibly stale) weights.
        with timer.phase("rollout"):
            batch = worker.rollout()
        recent_returns = (recent_returns + batch.returns.tolist())[-200:]
        # 2. Insert, with the actor's initial priorities.
        with timer.phase("insert"):
            added = replay.add(batch)
        if replay.size < cfg.replay.learning_starts:
            continue
        credit += cfg.replay.samples_per_insert * added
        # 3. Learn while the samples-per-insert ratio allows.
        while credit > 0 and learner.updates < cfg.train.total_updates:
            with timer.phase("sample"):
                sample = replay.sample(cfg.learner.batch_size, beta_at(cfg, learner.updates))
            with timer.phase("learn"):
                metrics, priorities = learner.update(sample)
            with timer.phase("update_priorities"):
                replay.update_priorities(sample.slots, sample.generations, priorities)
            credit -= float(sample.lengths.sum())
            u = learner.updates
            # 4. Publish weights to the actor on its schedule.
            if u % cfg.train.publish_every == 0:
                with timer.phase("publish_weights"):
                    worker.set_weights(learner.get_weights(), u)
            # 5. Evaluate greedily on held-out prompts (not counted as training time).
            if u % cfg.train.eval_every == 0:
                with timer.phase("evaluate", exclude_from_training=True):
                    result = greedy_eval(learner.online, task, spec.heldout, num_samples=0)
                last_success = result["success_rate"]
                if tracker.record(result, timer.train_s, u) and cfg.train.stop_at_target:
                    stop = True
                    break
            # 6. Checkpoint.
            if u % cfg.train.checkpoint_every == 0:
                with timer.phase("checkpoint", exclude_from_training=True):
                    save_checkpoint(
                        run_dir / "checkpoints",
                        u,
                        checkpoint_state(cfg, learner, counters()),
                        cfg.train.keep_checkpoints,
                    )
        if time.perf_counter() >= next_log:
            next_log = time.perf_counter() + cfg.train.log_every_s
            log.info(progress_line(worker.env_steps, learner.updates, recent_returns, last_success, timer.train_s))

    train_s = timer.train_s
    save_checkpoint(
        run_dir / "checkpoints", learner.updates, checkpoint_state(cfg, learner, counters()), cfg.train.keep_checkpoints
    )
    final = full_eval(spec, learner.online)
    tracker.record(final, train_s, learner.updates)
    summary = {
        "mode": "serial",
        "config": config_name,
        "task": task.name,
        "env_steps": worker.env_steps,
        "episodes": worker.episodes,
        "learner_updates": learner.updates,
        "transitions_trained": learner.transitions_trained,
        "wall_time_s": round(timer.wall_s, 3),
        "train_time_s": round(train_s, 3),
        "time_to_target_s": tracker.time_to_target_s,
        "updates_to_target": tracker.updates_to_target,
        "env_steps_per_s": round(worker.env_steps / train_s, 1),
        "transitions_trained_per_s": round(learner.transitions_trained / train_s, 1),
        "weights_version": worker.weights_version,
        "num_parameters": learner.online.num_parameters(),
        "final_losses": metrics,
        "timers": {k: round(v, 3) for k, v in timer.totals.items()},
        "eval": final,
        "eval_history": tracker.history,
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def checkpoint_state(cfg: Config, learner: Learner, counters: dict) -> dict:
    return {
        "learner": learner.state_dict(),
        "config": cfg.to_dict(),
        "counters": counters,
        "torch_rng": torch.get_rng_state(),
    }
