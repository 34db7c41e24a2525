"""`--mode serial`: actor, replay and learner in one process. For debugging, tests, and as the baseline the
distributed mode must beat. The loop reads as numbered phases, each timed."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from distributed.codec import weights_arrays, weights_nbytes
from distributed.summary import RunTotals
from learner.checkpoint import Checkpoint, CheckpointError, checkpoint_updates, list_checkpoints
from learner.learner import Learner
from learner.loop import LearnerLoop, LoopSettings, ReplaySource
from replay.format import rng_state, set_rng_state
from replay.rate_limiter import RateLimiter
from replay.shard import ReplayShard
from tokenq.build import RunSpec, build_spec, init_learner, make_worker
from tokenq.config import Config
from tokenq.recorder import RunRecorder
from tokenq.signals import StopRequest

log = logging.getLogger("tokenq")


def replay_snapshot_path(run_dir: Path, updates: int) -> Path:
    """Serial mode snapshots its replay with every checkpoint, so a resumed run continues exactly."""
    return Path(run_dir) / "checkpoints" / f"replay_{updates:08d}.snap"


def train_serial(
    cfg: Config, run_dir: Path, config_name: str = "", spec: RunSpec | None = None, resume: Checkpoint | None = None
) -> dict:
    """Train in this process. `resume` is a loaded checkpoint of this run directory to continue from."""
    spec = spec or build_spec(cfg)
    if cfg.train.torch_threads:
        torch.set_num_threads(cfg.train.torch_threads)
    rec = RunRecorder(spec, run_dir, config_name, mode="serial")
    seed, task, t = cfg.train.seed, spec.task, cfg.train
    learner = Learner(cfg.learner, spec.net_cfg, seed=seed)
    if (cfg.init.from_run or cfg.init.from_hf) and resume is None:
        init_learner(learner, cfg)
        rec.baseline(learner.online)
    online = learner.online
    log.info("Q-network: %s, %d parameters, on %s", online.describe(), online.num_parameters(), learner.device)
    worker = make_worker(cfg, task, spec.net_cfg, spec.heldout, cfg.actors.epsilon, seed + 1)
    worker.set_weights(learner.get_weights(), 0)
    replay = ReplayShard(
        cfg.replay.capacity, task.prompt_len, task.max_steps, cfg.replay.alpha, seed + 3, cfg.replay.priority_eps
    )
    # One process takes turns, so neither side runs ahead: an error buffer of 0 (see replay/rate_limiter.py).
    limiter = RateLimiter(cfg.replay.samples_per_insert, cfg.replay.min_size_to_sample, error_buffer=0.0)
    timer = rec.timer
    stop = False  # an evaluation reached the target with train.stop_at_target

    def evaluate(u: int) -> None:
        """5. Evaluate greedily on held-out prompts every train.eval_every updates (not training time)."""
        nonlocal stop
        if u % t.eval_every == 0:
            stop = rec.evaluate(learner.online, u, worker.env_steps) and t.stop_at_target

    def checkpoint() -> None:
        """The replay snapshot first, then the checkpoint that names it: a crash in between leaves the previous
        checkpoint and its snapshot intact. The losses of updates not yet reported are logged first."""
        loop.flush()
        u = learner.updates
        with timer.phase("checkpoint", exclude_from_training=True):
            replay.save_snapshot(replay_snapshot_path(run_dir, u))
        actor = {"rng": rng_state(worker.rng), "prompt_rng": rng_state(worker.prompts.rng)}
        actor["weights_version"] = worker.weights_version
        if worker.weights_version != u:  # the actor may act with older weights than the learner's: keep them too
            actor["weights"] = worker.net.state_dict()
        counters = {"env_steps": worker.env_steps, "episodes": worker.episodes, "limiter": limiter.state()}
        counters["metrics"] = loop.metrics
        rec.checkpoint(loop.checkpoint_state(cfg.to_dict(), counters=counters, recorder=rec.state(), actor=actor))
        kept = {
            replay_snapshot_path(run_dir, checkpoint_updates(p))
            for p in list_checkpoints(Path(run_dir) / "checkpoints")
        }
        for snap in (Path(run_dir) / "checkpoints").glob("replay_*.snap"):
            if snap not in kept:
                snap.unlink(missing_ok=True)

    loop = LearnerLoop(
        learner,
        ReplaySource(replay, limiter, cfg.learner.batch_size),
        LoopSettings.of(cfg, lookahead=False),
        publish=lambda u: worker.set_weights(learner.get_weights(), u),
        checkpoint=checkpoint,
        after_update=evaluate,
        losses=rec.td_losses,
        timer=timer,
    )
    if resume is not None:
        _restore(resume, rec, loop, worker, replay, limiter, run_dir)
    learner.mark_good()

    def report(force: bool = False) -> None:
        """The progress line and TensorBoard scalars, every train.log_every_s (or now)."""
        rec.progress(
            worker.env_steps,
            learner.updates,
            loop.metrics,
            lambda: {
                "epsilon": worker.epsilon,
                "updates_per_s": learner.updates / max(timer.train_s, 1e-9),
                "transitions_per_s": learner.transitions_trained / max(timer.train_s, 1e-9),
                "replay_size": replay.num_transitions,
                "samples_per_insert": learner.transitions_trained / max(limiter.inserted, 1),
                "weights_version": worker.weights_version,
                "actor_lag": learner.updates - worker.weights_version,
                **loop.staleness.window(),
                "nonfinite_updates": learner.nonfinite_updates,
                "rollbacks": learner.rollbacks,
            },
            force=force,
        )

    with StopRequest() as stop_request:
        while not stop and not stop_request and learner.updates < t.total_updates:
            if timer.train_s >= t.max_seconds:
                break
            if not limiter.can_sample():  # the actor's turn (a resumed run may start inside the learner's)
                # 1. Rollout: one batch of episodes with the worker's (possibly stale) weights.
                with timer.phase("rollout"):
                    batch = worker.rollout()
                rec.episodes(batch.returns.tolist())
                # 2. Insert, with the actor's initial priorities.
                with timer.phase("insert"):
                    added = replay.add(batch)
                limiter.inserted_now(added, len(batch.lengths))
            # 3-6. Learn while the rate limiter allows: sample, update, priorities, publish, evaluate, checkpoint.
            loop.run(lambda: stop or bool(stop_request))
            # 7. Report.
            report()
        if stop_request:
            log.warning("stopping on %s: final checkpoint, replay snapshot and summary", stop_request.name)
        checkpoint()
        report(force=True)  # the last point of every curve: the final metrics
        totals = RunTotals(
            env_steps=worker.env_steps,
            episodes=worker.episodes,
            learner_updates=learner.updates,
            transitions_trained=learner.transitions_trained,
            num_actors=1,
            num_shards=1,
            weights_version=worker.weights_version,
            final_weights_version=learner.updates,  # the final checkpoint's and evaluation's weights
            actor_restarts=0,
            replay_transitions_lost=0,
            nonfinite_updates=learner.nonfinite_updates,
            rollbacks=learner.rollbacks,
            resumed_from_updates=None if resume is None else resume.updates,
            nodes=[],
            num_parameters=learner.online.num_parameters(),
            trainable_parameters=learner.trainable_parameters(),
            weights_bytes_per_publish=weights_nbytes(weights_arrays(learner.online.state_dict())),
            final_losses=loop.metrics,
            **loop.staleness.summary(),
        )
        return rec.finish(learner.online, totals, stopped_by=stop_request.name)


def _restore(
    ckpt: Checkpoint,
    rec: RunRecorder,
    loop: LearnerLoop,
    worker,
    replay: ReplayShard,
    limiter: RateLimiter,
    run_dir: Path,
) -> None:
    """Put a checkpoint's learner, actor, replay, rate limiter, clocks and RNGs back."""
    learner = loop.learner
    try:
        learner.load_state_dict(ckpt.learner)
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(f"the checkpoint in {run_dir} does not fit this model ({str(err)[:120]})") from None
    if ckpt.actor is None or ckpt.recorder is None or "limiter" not in ckpt.counters:
        raise CheckpointError(f"the checkpoint in {run_dir} holds no serial run's state to resume from")
    u = learner.updates
    replay.load_snapshot(replay_snapshot_path(run_dir, u))
    actor = ckpt.actor
    worker.set_weights(actor.get("weights", learner.online.state_dict()), int(actor["weights_version"]))
    set_rng_state(worker.rng, actor["rng"], "the checkpoint's actor state")
    set_rng_state(worker.prompts.rng, actor["prompt_rng"], "the checkpoint's actor state")
    worker.env_steps, worker.episodes = int(ckpt.counters["env_steps"]), int(ckpt.counters["episodes"])
    limiter.load_state(ckpt.counters["limiter"])
    loop.metrics = dict(ckpt.counters["metrics"])
    torch.set_rng_state(ckpt.torch_rng)
    rec.load_state(ckpt.recorder, u)
    log.info("resumed from update %d (%d env steps)", u, worker.env_steps)
