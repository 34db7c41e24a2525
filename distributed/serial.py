"""`--mode serial`: actor, replay and learner in one process. For debugging, tests, and as the baseline the
distributed mode must beat. The loop reads as numbered phases, each timed."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from distributed import metrics as M
from distributed.components import RunSpec, build_spec, init_learner, make_worker
from distributed.config import Config
from distributed.recorder import RunRecorder
from distributed.replay import ReplayShard
from learner.learner import Learner

log = logging.getLogger("tokenq")


def beta_at(cfg: Config, updates: int) -> float:
    """Importance-sampling exponent, annealed linearly from replay.beta to 1 over the run (Schaul et al. 2016)."""
    frac = min(1.0, updates / cfg.train.total_updates)
    return cfg.replay.beta + (1.0 - cfg.replay.beta) * frac


def learner_scalars(metrics: dict[str, float]) -> dict[str, float | None]:
    return {M.TD_LOSS: metrics.get("td_loss"), M.Q_VALUES: metrics.get("q_values"), M.V_VALUES: metrics.get("v_values")}


def checkpoint_state(cfg: Config, learner_state: dict, counters: dict) -> dict:
    return {"learner": learner_state, "config": cfg.to_dict(), "counters": counters, "torch_rng": torch.get_rng_state()}


def train_serial(cfg: Config, run_dir: Path, config_name: str = "", spec: RunSpec | None = None) -> dict:
    spec = spec or build_spec(cfg)
    if cfg.train.torch_threads:
        torch.set_num_threads(cfg.train.torch_threads)
    rec = RunRecorder(spec, run_dir, config_name, mode="serial", eval_pauses_training=True)
    seed, task = cfg.train.seed, spec.task
    learner = Learner(cfg.learner, spec.net_cfg, seed=seed)
    if cfg.init.from_run:
        init_learner(learner, cfg)
        rec.baseline(learner.online)
    log.info("Q-network: %s, %d parameters, on %s", spec.net_cfg.arch, learner.online.num_parameters(), learner.device)
    worker = make_worker(cfg, task, spec.net_cfg, spec.heldout, cfg.actors.epsilon, seed + 1)
    worker.set_weights(learner.get_weights(), 0)
    replay = ReplayShard(
        cfg.replay.capacity, task.prompt_len, task.max_steps, cfg.replay.alpha, seed + 3, cfg.replay.priority_eps
    )
    timer = rec.timer
    credit = 0.0  # transitions the learner may still sample under the samples-per-insert ratio
    metrics: dict[str, float] = {}
    stop = False

    def counters() -> dict:
        return {"env_steps": worker.env_steps, "episodes": worker.episodes, "train_s": timer.train_s}

    while not stop and learner.updates < cfg.train.total_updates and timer.train_s < cfg.train.max_seconds:
        # 1. Rollout: one batch of episodes with the worker's (possibly stale) weights.
        with timer.phase("rollout"):
            batch = worker.rollout()
        rec.episodes(batch.returns.tolist())
        # 2. Insert, with the actor's initial priorities.
        with timer.phase("insert"):
            added = replay.add(batch)
        if replay.size >= cfg.replay.learning_starts:
            credit += cfg.replay.samples_per_insert * added
        # 3. Learn while the samples-per-insert ratio allows.
        while credit > 0 and learner.updates < cfg.train.total_updates and not stop:
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
                reached = rec.evaluate(learner.online, u, worker.env_steps)
                stop = reached and cfg.train.stop_at_target
            # 6. Checkpoint.
            if u % cfg.train.checkpoint_every == 0:
                rec.checkpoint(u, checkpoint_state(cfg, learner.state_dict(), counters()))
        # 7. Report.
        rec.progress(
            worker.env_steps,
            learner.updates,
            lambda: {
                **learner_scalars(metrics),
                M.EPSILON: worker.epsilon,
                M.UPDATES_PER_S: learner.updates / max(timer.train_s, 1e-9),
                M.TRANSITIONS_PER_S: learner.transitions_trained / max(timer.train_s, 1e-9),
                M.REPLAY_SIZE: replay.num_transitions,
                M.SAMPLES_PER_INSERT: replay.sampled_transitions / max(replay.inserted_transitions, 1),
                M.WEIGHTS_VERSION: worker.weights_version,
                M.ACTOR_LAG: learner.updates - worker.weights_version,
            },
        )

    rec.checkpoint(learner.updates, checkpoint_state(cfg, learner.state_dict(), counters()))
    counts = {
        "env_steps": worker.env_steps,
        "episodes": worker.episodes,
        "learner_updates": learner.updates,
        "transitions_trained": learner.transitions_trained,
    }
    extra = {
        "num_actors": 1,
        "num_shards": 1,
        "weights_version": worker.weights_version,
        "actor_restarts": 0,
        "nodes": [],
        "num_parameters": learner.online.num_parameters(),
        "final_losses": metrics,
    }
    return rec.finish(learner.online, counts, extra)
