"""`--mode local` (the default) and cluster runs: Ape-X on Ray.

The driver starts (or joins) Ray, places one learner, S replay shards, N rollout actors and a weight store, then
loops over timed phases: collect rollouts and relaunch actors, feed the learner its samples-per-insert allowance,
evaluate, checkpoint, report. Algorithm work happens in the actors; the driver only schedules and records.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.policy import ape_x_epsilons
from distributed import metrics as M
from distributed.components import RunSpec
from distributed.config import Config, ConfigError
from distributed.ray_actors import LearnerActor, ReplayShardActor, RolloutActor, WeightStoreActor, actor_names
from distributed.recorder import RunRecorder
from distributed.serial import beta_at, checkpoint_state, learner_scalars
from learner.model import QNetwork

log = logging.getLogger("tokenq")


def start_ray(cfg: Config, address: str | None) -> tuple[bool, str]:
    """Join the cluster at `address` / RAY_ADDRESS, or start a local instance sized for this job.

    Returns (whether this call connected, and so disconnects at the end, "cluster" or "local"). Locally the CPU
    resource is at least what the job asks for: actor processes share the cores, which is what local
    multi-process mode means.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    mode = "cluster" if address else "local"
    if ray.is_initialized():  # a caller (a test session, a notebook) already holds a Ray connection
        return False, mode
    if address:
        ray.init(address=address, log_to_driver=True)
        return True, mode
    wanted = cfg.actors.num_actors * cfg.actors.num_cpus + 1
    ray.init(
        num_cpus=max(os.cpu_count() or 1, int(wanted + 0.999)),
        include_dashboard=False,
        log_to_driver=True,
        dashboard_host="127.0.0.1",
    )
    return True, mode


class ApeXRun:
    """Handles to the Ray actors of one run, and the counters the driver keeps about them."""

    def __init__(self, cfg: Config, spec: RunSpec):
        self.cfg, config = cfg, cfg.to_dict()
        task, seed = spec.task, cfg.train.seed
        per_shard = cfg.replay.capacity // cfg.replay.num_shards
        self.names = actor_names(f"run-{uuid.uuid4().hex[:8]}", cfg.replay.num_shards)
        ns = self.names["namespace"]
        self.store = WeightStoreActor.options(name=self.names["store"], namespace=ns).remote()
        # The learner takes a GPU when the cluster has one; the shards go beside it (node affinity), so
        # sampling and priority updates stay on one node; rollout actors spread over the nodes.
        use_gpu = ray.cluster_resources().get("GPU", 0) >= 1 and cfg.learner.device != "cpu"
        self.learner = LearnerActor.options(num_gpus=1 if use_gpu else 0, num_cpus=1).remote(config, self.names, seed)
        placement = "DEFAULT"
        if len([n for n in ray.nodes() if n["Alive"]]) > 1:
            learner_node = ray.get(self.learner.where.remote())["node_id"]
            placement = NodeAffinitySchedulingStrategy(node_id=learner_node, soft=False)
        self.shards = [
            ReplayShardActor.options(name=self.names["shards"][i], namespace=ns, scheduling_strategy=placement).remote(
                per_shard, task.prompt_len, task.max_steps, cfg.replay.alpha, seed + 100 + i, cfg.replay.priority_eps
            )
            for i in range(cfg.replay.num_shards)
        ]
        self.shard_nodes = {w["node_id"] for w in ray.get([sh.stats.remote() for sh in self.shards])}  # all live
        self.epsilons = ape_x_epsilons(cfg.actors.epsilon, cfg.actors.epsilon_alpha, cfg.actors.num_actors)
        self.actors = [self._make_actor(i) for i in range(cfg.actors.num_actors)]
        self.restarts = 0
        self.nodes: set[str] = set()
        self.learner_node = ""  # set by wait_ready

    def _make_actor(self, i: int):
        # Ray restarts a dead actor process (its constructor runs again and pulls the newest weights).
        return RolloutActor.options(
            num_cpus=self.cfg.actors.num_cpus, max_restarts=-1, scheduling_strategy="SPREAD"
        ).remote(self.cfg.to_dict(), i, self.epsilons[i], self.names, self.cfg.train.seed + 1000 * (i + 1))

    def wait_ready(self, timeout_s: float = 300.0) -> dict:
        try:
            where = ray.get([a.where.remote() for a in self.actors] + [self.learner.where.remote()], timeout=timeout_s)
        except GetTimeoutError:
            need = self.cfg.actors.num_actors * self.cfg.actors.num_cpus + 1
            have = ray.cluster_resources().get("CPU", 0)
            raise ConfigError(
                f"the actors could not be placed within {timeout_s:.0f}s: the job asks for {need:g} CPUs "
                f"(actors.num_actors x actors.num_cpus + 1 for the learner) and the cluster has {have:g}"
            ) from None
        self.nodes.update(w["node_id"] for w in where[:-1])
        self.learner_node = where[-1]["node_id"]
        return where[-1]


def train_distributed(cfg: Config, run_dir: Path, config_name: str, spec: RunSpec, address: str | None = None) -> dict:
    started, mode = start_ray(cfg, address)
    torch.set_num_threads(1)  # the driver only evaluates; leave the cores to actors and learner
    try:
        t0 = time.perf_counter()
        run = ApeXRun(cfg, spec)
        learner_where = run.wait_ready()
        log.info(
            "Ray: %d rollout actors, %d replay shards, learner on %s; ready in %.1fs",
            cfg.actors.num_actors,
            cfg.replay.num_shards,
            learner_where["device"],
            time.perf_counter() - t0,
        )
        return _drive(cfg, run_dir, config_name, spec, run, mode)
    finally:
        if started:
            ray.shutdown()


def _drive(cfg: Config, run_dir: Path, config_name: str, spec: RunSpec, run: ApeXRun, mode: str) -> dict:
    rec = RunRecorder(spec, run_dir, config_name, mode=mode, eval_pauses_training=False)
    timer = rec.timer
    eval_net = QNetwork(spec.net_cfg).eval()
    if cfg.init.from_run:  # the learner published its warm-start weights as version 0: evaluate them once
        _, (weights_ref,) = ray.get(run.store.latest.remote(-1))
        eval_net.load_state_dict(ray.get(weights_ref))
        rec.baseline(eval_net)
    spi = cfg.replay.samples_per_insert
    # Actors may run ahead of the learner by at most one round of calls per actor (Reverb-style error buffer).
    slack = spi * cfg.actors.num_actors * cfg.actors.batches_per_call * cfg.actors.batch_size * spec.task.max_steps
    env_steps = episodes = inserted_after_start = 0
    updates = trained = 0
    learning = False
    actor_calls: dict = {}  # ref -> actor index
    learner_call = None
    metrics: dict[str, float] = {}
    versions: dict[int, int] = {}
    epsilon_mean = sum(run.epsilons) / len(run.epsilons)
    next_eval, next_ckpt = cfg.train.eval_every, cfg.train.checkpoint_every
    stop = False

    def launch(i: int) -> None:
        actor_calls[run.actors[i].run.remote(cfg.actors.batches_per_call)] = i

    for i in range(len(run.actors)):
        launch(i)
    idle = set()
    while not stop and updates < cfg.train.total_updates and timer.train_s < cfg.train.max_seconds:
        pending = list(actor_calls) + ([learner_call] if learner_call is not None else [])
        ready, _ = ray.wait(pending, num_returns=1, timeout=0.1)
        # 1. Collect finished rollout calls; a dead actor is restarted by Ray and counted here.
        with timer.phase("collect_rollouts"):
            for ref in [r for r in ready if r in actor_calls]:
                i = actor_calls.pop(ref)
                try:
                    stats = ray.get(ref)
                except RayActorError:
                    run.restarts += 1
                    log.warning("rollout actor %d died; Ray restarts it (%d restarts so far)", i, run.restarts)
                    idle.add(i)
                    continue
                env_steps += stats["transitions"]
                episodes += stats["episodes"]
                rec.episodes(stats["returns"])
                versions[i] = stats["weights_version"]
                run.nodes.add(stats["node_id"])
                if learning:
                    inserted_after_start += stats["transitions"]
                elif episodes >= cfg.replay.learning_starts:
                    learning = True
                idle.add(i)
            # Rate limit: relaunch actors only while the learner's backlog stays within the slack.
            for i in sorted(idle):
                if not learning or spi * inserted_after_start - trained < slack:
                    launch(i)
                    idle.discard(i)
        # 2. Learner: take its results, hand it the allowance the samples-per-insert ratio gives.
        with timer.phase("learn"):
            if learner_call is not None and learner_call in ready:
                out = ray.get(learner_call)
                learner_call = None
                updates, trained = out["updates"], out["transitions_trained"]
                metrics = out["metrics"] or metrics
            budget = spi * inserted_after_start - trained
            if learner_call is None and learning and budget > 0:
                chunk = min(cfg.train.publish_every, cfg.train.total_updates - updates)
                learner_call = run.learner.train.remote(chunk, budget, beta_at(cfg, updates))
        # 3. Evaluate the newest published weights on held-out prompts (training goes on meanwhile).
        if updates >= next_eval:
            next_eval = (updates // cfg.train.eval_every + 1) * cfg.train.eval_every
            version, (weights_ref,) = ray.get(run.store.latest.remote(-1))
            eval_net.load_state_dict(ray.get(weights_ref))
            stop = rec.evaluate(eval_net, version, env_steps) and cfg.train.stop_at_target
        # 4. Checkpoint.
        if updates >= next_ckpt:
            next_ckpt = (updates // cfg.train.checkpoint_every + 1) * cfg.train.checkpoint_every
            rec.checkpoint(
                updates,
                checkpoint_state(
                    cfg, ray.get(run.learner.state_dict.remote()), {"env_steps": env_steps, "episodes": episodes}
                ),
            )
        # 5. Report.
        train_s = max(timer.train_s, 1e-9)
        rec.progress(
            env_steps,
            updates,
            lambda: {
                **learner_scalars(metrics),
                M.EPSILON: epsilon_mean,
                M.UPDATES_PER_S: updates / train_s,
                M.TRANSITIONS_PER_S: trained / train_s,
                M.REPLAY_SIZE: sum(st["size_transitions"] for st in ray.get([sh.stats.remote() for sh in run.shards])),
                M.SAMPLES_PER_INSERT: trained / max(inserted_after_start, 1),
                M.WEIGHTS_VERSION: updates,
                M.ACTOR_LAG: updates - min(versions.values()) if versions else None,
                M.ACTOR_RESTARTS: run.restarts,
            },
        )

    # Let in-flight work finish, then record the final state.
    if learner_call is not None:
        out = ray.get(learner_call)
        updates, trained = out["updates"], out["transitions_trained"]
    for ref in list(actor_calls):
        try:
            stats = ray.get(ref)
            env_steps += stats["transitions"]
            episodes += stats["episodes"]
        except RayActorError:
            run.restarts += 1
    state = ray.get(run.learner.state_dict.remote())
    rec.checkpoint(updates, checkpoint_state(cfg, state, {"env_steps": env_steps, "episodes": episodes}))
    eval_net.load_state_dict(state["online"])
    shard_stats = ray.get([s.stats.remote() for s in run.shards])
    counts = {"env_steps": env_steps, "episodes": episodes, "learner_updates": updates, "transitions_trained": trained}
    extra = {
        "num_actors": cfg.actors.num_actors,
        "num_shards": cfg.replay.num_shards,
        "weights_version": ray.get(run.store.current_version.remote()),
        "actor_restarts": run.restarts,
        "nodes": sorted(run.nodes),
        "learner_node": run.learner_node,
        "shard_nodes": sorted(run.shard_nodes),
        "actor_epsilons": run.epsilons,
        "replay_transitions": sum(s["size_transitions"] for s in shard_stats),
        "num_parameters": eval_net.num_parameters(),
        "final_losses": metrics,
    }
    return rec.finish(eval_net, counts, extra)
