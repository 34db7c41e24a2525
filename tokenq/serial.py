"""`--mode serial`: actor, replay and learner in one process. For debugging, tests, and as the baseline the
distributed mode must beat. The loop reads as numbered phases, each timed."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from distributed.codec import weights_arrays, weights_nbytes
from learner.checkpoint import CheckpointError, checkpoint_updates, list_checkpoints
from learner.learner import Learner
from replay.format import rng_state, set_rng_state
from replay.sampling import Staleness
from replay.shard import ReplayShard, beta_at
from tokenq.build import RunSpec, build_spec, init_learner, make_worker
from tokenq.config import Config
from tokenq.recorder import RunRecorder
from tokenq.signals import StopRequest

log = logging.getLogger("tokenq")


def replay_snapshot_path(run_dir: Path, updates: int) -> Path:
    """Serial mode snapshots its replay with every checkpoint, so a resumed run continues exactly."""
    return Path(run_dir) / "checkpoints" / f"replay_{updates:08d}.snap"


def train_serial(
    cfg: Config, run_dir: Path, config_name: str = "", spec: RunSpec | None = None, resume: dict | None = None
) -> dict:
    """Train in this process. `resume` is a loaded checkpoint of this run directory to continue from."""
    spec = spec or build_spec(cfg)
    if cfg.train.torch_threads:
        torch.set_num_threads(cfg.train.torch_threads)
    rec = RunRecorder(spec, run_dir, config_name, mode="serial")
    seed, task = cfg.train.seed, spec.task
    learner = Learner(cfg.learner, spec.net_cfg, seed=seed)
    if (cfg.init.from_run or cfg.init.from_hf) and resume is None:
        init_learner(learner, cfg)
        rec.baseline(learner.online)
    arch = f"Hugging Face {type(learner.online.lm).__name__}" if spec.net_cfg.hf_path else spec.net_cfg.arch
    log.info("Q-network: %s, %d parameters, on %s", arch, learner.online.num_parameters(), learner.device)
    worker = make_worker(cfg, task, spec.net_cfg, spec.heldout, cfg.actors.epsilon, seed + 1)
    worker.set_weights(learner.get_weights(), 0)
    replay = ReplayShard(
        cfg.replay.capacity, task.prompt_len, task.max_steps, cfg.replay.alpha, seed + 3, cfg.replay.priority_eps
    )
    timer = rec.timer
    credit = 0.0  # transitions the learner may still sample under the samples-per-insert ratio
    inserted_after_start = 0  # transitions inserted once replay held replay.min_size_to_sample episodes
    metrics: dict[str, float] = {}
    if resume is not None:
        credit, inserted_after_start, metrics = _restore(resume, rec, learner, worker, replay, run_dir)
    learner.mark_good()
    stop = False
    lag = Staleness()

    def counters() -> dict:
        return {
            "env_steps": worker.env_steps,
            "episodes": worker.episodes,
            "train_s": timer.train_s,
            "credit": credit,
            "inserted_after_start": inserted_after_start,
            "metrics": metrics,
            "worker": {
                "rng": rng_state(worker.rng),
                "prompt_rng": rng_state(worker.prompts.rng),
                "weights_version": worker.weights_version,
            },
            "recorder": rec.state(),
        }

    def checkpoint() -> None:
        """The replay snapshot first, then the checkpoint that names it: a crash in between leaves the previous
        checkpoint and its snapshot intact. The losses of updates not yet reported are logged first."""
        nonlocal metrics
        metrics = _log_losses(rec, learner.flush_metrics()) or metrics
        u = learner.updates
        with timer.phase("checkpoint", exclude_from_training=True):
            replay.save_snapshot(replay_snapshot_path(run_dir, u))
        # The state checkpointed is also the one a rollback returns to.
        # the actor may act with older weights than the learner's: keep them too
        extra = {"worker_weights": worker.net.state_dict()} if worker.weights_version != u else {}
        rec.checkpoint(u, learner.mark_good(), counters(), **extra)
        kept = {
            replay_snapshot_path(run_dir, checkpoint_updates(p))
            for p in list_checkpoints(Path(run_dir) / "checkpoints")
        }
        for snap in (Path(run_dir) / "checkpoints").glob("replay_*.snap"):
            if snap not in kept:
                snap.unlink(missing_ok=True)

    def report(force: bool = False) -> None:
        """The progress line and TensorBoard scalars, every train.log_every_s (or now)."""
        rec.progress(
            worker.env_steps,
            learner.updates,
            metrics,
            lambda: {
                "epsilon": worker.epsilon,
                "updates_per_s": learner.updates / max(timer.train_s, 1e-9),
                "transitions_per_s": learner.transitions_trained / max(timer.train_s, 1e-9),
                "replay_size": replay.num_transitions,
                "samples_per_insert": learner.transitions_trained / max(inserted_after_start, 1),
                "weights_version": worker.weights_version,
                "actor_lag": learner.updates - worker.weights_version,
                **lag.window(),
                "nonfinite_updates": learner.nonfinite_updates,
                "rollbacks": learner.rollbacks,
            },
            force=force,
        )

    with StopRequest() as stop_request:
        while not stop and not stop_request and learner.updates < cfg.train.total_updates:
            if timer.train_s >= cfg.train.max_seconds:
                break
            if credit <= 0:  # (a resumed run may start inside the learning phase, with credit left)
                # 1. Rollout: one batch of episodes with the worker's (possibly stale) weights.
                with timer.phase("rollout"):
                    batch = worker.rollout()
                rec.episodes(batch.returns.tolist())
                # 2. Insert, with the actor's initial priorities.
                with timer.phase("insert"):
                    added = replay.add(batch)
                if replay.size >= cfg.replay.min_size_to_sample:
                    credit += cfg.replay.samples_per_insert * added
                    inserted_after_start += added
            # 3. Learn while the samples-per-insert ratio allows.
            while credit > 0 and learner.updates < cfg.train.total_updates and not stop and not stop_request:
                with timer.phase("sample"):
                    sample = replay.sample(
                        cfg.learner.batch_size, beta_at(cfg.replay.beta, learner.updates, cfg.train.total_updates)
                    )
                with timer.phase("learn"):
                    step_metrics, priorities = learner.update(sample)
                credit -= float(sample.lengths.sum())
                lag.sampled(learner.updates, sample)
                metrics = _log_losses(rec, step_metrics) or metrics  # a non-finite update's loss is shown too
                if priorities is None:  # a non-finite update was skipped (maybe rolled back)
                    continue
                with timer.phase("update_priorities"):
                    replay.update_priorities(sample.slots, sample.generations, priorities)
                u = learner.updates
                # 4. Publish weights to the actor on its schedule.
                if u % cfg.train.publish_every == 0:
                    with timer.phase("publish_weights"):
                        worker.set_weights(learner.get_weights(), u)
                # 5. Evaluate greedily on held-out prompts (not counted as training time).
                if u % cfg.train.eval_every == 0:
                    reached = rec.evaluate(learner.online, u, worker.env_steps)
                    stop = reached and cfg.train.stop_at_target
                # 6. Checkpoint, with the replay snapshot.
                if u % cfg.train.checkpoint_every == 0:
                    checkpoint()
            # 7. Report.
            report()
        if stop_request:
            log.warning("stopping on %s: final checkpoint, replay snapshot and summary", stop_request.name)
        checkpoint()
        report(force=True)  # the last point of every curve: the final metrics
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
            "final_weights_version": learner.updates,  # the final checkpoint's and evaluation's weights
            "actor_restarts": 0,
            "replay_transitions_lost": 0,
            "nonfinite_updates": learner.nonfinite_updates,
            "rollbacks": learner.rollbacks,
            "resumed_from_updates": None if resume is None else int(resume["learner"]["updates"]),
            "nodes": [],
            "num_parameters": learner.online.num_parameters(),
            "trainable_parameters": learner.trainable_parameters(),
            "weights_bytes_per_publish": weights_nbytes(weights_arrays(learner.online.state_dict())),
            "final_losses": metrics,
            **lag.summary(),
        }
        return rec.finish(learner.online, counts, extra, stopped_by=stop_request.name)


def _log_losses(rec: RunRecorder, metrics: dict | None) -> dict | None:
    """Log each update's TD loss of a learner's metrics report (train.loss_log); returns the metrics to show."""
    if metrics is None:
        return None
    for u, loss in metrics.get("td_loss_per_update", ()):
        rec.td_loss(u, loss)
    return {k: v for k, v in metrics.items() if k != "td_loss_per_update"}


def _restore(state: dict, rec: RunRecorder, learner: Learner, worker, replay: ReplayShard, run_dir: Path):
    """Put a checkpoint's learner, actor, replay, clocks and RNGs back; returns (credit, transitions inserted
    since learning started, last metrics)."""
    counters = state["counters"]
    try:
        learner.load_state_dict(state["learner"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"the checkpoint in {run_dir} does not fit this model ({str(err)[:120]})") from None
    u = learner.updates
    replay.load_snapshot(replay_snapshot_path(run_dir, u))
    w = counters["worker"]
    worker.set_weights(state.get("worker_weights", learner.online.state_dict()), int(w["weights_version"]))
    set_rng_state(worker.rng, w["rng"], "the checkpoint's actor state")
    set_rng_state(worker.prompts.rng, w["prompt_rng"], "the checkpoint's actor state")
    worker.env_steps, worker.episodes = int(counters["env_steps"]), int(counters["episodes"])
    torch.set_rng_state(state["torch_rng"])
    rec.load_state(counters["recorder"], u)
    log.info("resumed from update %d (%d env steps)", u, worker.env_steps)
    return float(counters["credit"]), int(counters.get("inserted_after_start", 0)), dict(counters["metrics"])
