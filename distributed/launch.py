"""Placing an Ape-X run on Ray: starting or joining Ray, and the learner, replay shards, rollout actors, weight store
and evaluation actor of one run, with the placement rules: the learner on a GPU when there is one (a replacement
learner by the same rule), the shards beside it by soft affinity (Ray places a shard elsewhere when that node is
full or gone), the rollout actors spread over the nodes.

What the actors run comes from the application as factories (HostFactories); nothing here knows configs beyond
reading their attributes.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import ray
from ray.exceptions import GetTimeoutError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.policy import ape_x_epsilons
from distributed.factories import HostFactories
from distributed.hosts import (
    ActorSettings,
    EvalActor,
    RateLimiterActor,
    ReplayShardActor,
    RolloutActor,
    WeightStoreActor,
    actor_names,
)
from distributed.learner_host import LearnerActor, LearnerSettings
from learner.loop import LoopSettings
from replay.shard import ReplayShard

# A shard's (and the rate limiter's) resource request: no CPU, 1 MiB of Ray's memory resource. Not nothing: Ray ignores
# a soft node affinity for actors that ask for no resource at all (seen with Ray 2.60: such actors land on any node),
# and not CPU, which a job's actors and learner may take entirely.
REPLAY_MEMORY = 1 << 20


class PlacementError(RuntimeError):
    """The cluster cannot hold the job's actors."""


def ray_mode(address: str | None) -> str:
    """ "cluster" when joining an existing cluster (`address` or RAY_ADDRESS), else "local"."""
    return "cluster" if address or os.environ.get("RAY_ADDRESS") else "local"


def start_ray(num_cpus_wanted: float, address: str | None) -> bool:
    """Join the cluster at `address` / RAY_ADDRESS, or start a local instance sized for this job.

    Returns whether this call connected (and so disconnects at the end). Locally the CPU resource is at least what
    the job asks for: actor processes share the cores, which is what local multi-process mode means.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():  # a caller (a test session, a notebook) already holds a Ray connection
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
        return True
    ray.init(
        num_cpus=max(os.cpu_count() or 1, int(num_cpus_wanted + 0.999)),
        include_dashboard=False,
        log_to_driver=True,
        dashboard_host="127.0.0.1",
    )
    return True


def check_snapshots(cfg, prompt_len: int, max_steps: int, snapshot_dir: Path) -> None:
    """Read every existing shard snapshot here first, so a corrupt or misfit one is one clear error, not a shard
    that dies in its constructor."""
    per_shard = cfg.replay.capacity // cfg.replay.num_shards
    for i in range(cfg.replay.num_shards):
        path = snapshot_dir / f"shard-{i}.snap"
        if path.exists():
            ReplayShard(per_shard, prompt_len, max_steps).load_snapshot(path)


def learner_settings(cfg, checkpoint_dir: Path | None) -> LearnerSettings:
    t, r = cfg.train, cfg.replay
    return LearnerSettings(
        loop=LoopSettings.of(cfg, lookahead=True),  # the next batch's copy to the device overlaps the update
        prefetch=r.prefetch,
        torch_threads=t.torch_threads,
        seed=t.seed,
        checkpoint_dir=str(checkpoint_dir.resolve()) if checkpoint_dir else "",
        keep_checkpoints=t.keep_checkpoints,
        config=cfg.to_dict(),
    )


class ApeXRun:
    """Handles to the Ray actors of one run."""

    def __init__(
        self,
        cfg,
        prompt_len: int,
        max_steps: int,
        hosts: HostFactories,
        snapshot_dir: Path | None = None,
        checkpoint_dir: Path | None = None,
    ):
        self.cfg, seed = cfg, cfg.train.seed
        per_shard = cfg.replay.capacity // cfg.replay.num_shards
        self.names = actor_names(f"run-{uuid.uuid4().hex[:8]}", cfg.replay.num_shards)
        ns = self.names["namespace"]
        # The store restarts like the other actors (empty: the learner's next publication fills it).
        self.store = WeightStoreActor.options(
            name=self.names["store"], namespace=ns, max_restarts=-1, max_task_retries=-1
        ).remote()
        # The learner takes a GPU when the cluster has one; a replacement learner is placed by the same rule.
        use_gpu = ray.cluster_resources().get("GPU", 0) >= 1 and cfg.learner.device != "cpu"
        settings = learner_settings(cfg, checkpoint_dir)
        self.make_learner = lambda: LearnerActor.options(num_gpus=1 if use_gpu else 0, num_cpus=1).remote(
            hosts.make_learner, settings, self.names
        )
        self.learner = self.make_learner()
        try:
            learner_node = ray.get(self.learner.where.remote(), timeout=300)["node_id"]
        except GetTimeoutError:
            raise PlacementError(
                "the learner could not be placed within 300s: it asks for 1 CPU"
                + (" and 1 GPU" if use_gpu else "")
                + f" and the cluster has {ray.cluster_resources().get('CPU', 0):g} CPUs"
            ) from None
        # Shards beside the learner, so sampling and priority updates stay on one node; soft, so that Ray places
        # them elsewhere when that node is full or dies (a hard affinity could never be rescheduled).
        placement = NodeAffinitySchedulingStrategy(node_id=learner_node, soft=True, _spill_on_unavailable=True)
        # Shards restart like actors do, from their newest snapshot in the run directory.
        self.shards = [
            ReplayShardActor.options(
                name=self.names["shards"][i],
                namespace=ns,
                memory=REPLAY_MEMORY,
                scheduling_strategy=placement,
                max_restarts=-1,
            ).remote(
                per_shard,
                prompt_len,
                max_steps,
                cfg.replay.alpha,
                seed + 100 + i,
                cfg.replay.priority_eps,
                str(snapshot_dir.resolve()) if snapshot_dir else "",
                f"shard-{i}",
                cfg.replay.snapshot_every_s,
            )
            for i in range(cfg.replay.num_shards)
        ]
        # One rate limiter for the table of S shards, beside them; restarted empty, it waits for min_size_to_sample
        # new episodes before the learner samples again.
        r = cfg.replay
        self.limiter = RateLimiterActor.options(
            name=self.names["limiter"],
            namespace=ns,
            memory=REPLAY_MEMORY,
            scheduling_strategy=placement,
            max_restarts=-1,
        ).remote(r.samples_per_insert, r.min_size_to_sample, r.error_buffer)
        stats = ray.get([sh.stats.remote() for sh in self.shards])  # all live
        ray.get(self.limiter.seed.remote(sum(st["size_episodes"] for st in stats)))  # a resumed run's replay
        self.shard_nodes = {w["node_id"] for w in stats}
        self.shard_pids = [w["pid"] for w in stats]
        self.shard_starts = sum(w.get("starts", 1) for w in stats)  # later starts are restarts
        a = cfg.actors
        self.epsilons = ape_x_epsilons(a.epsilon, a.epsilon_alpha, a.num_actors)
        actor_settings = ActorSettings.of(a)
        # Ray restarts a dead actor process (its constructor runs again and pulls the newest weights).
        self.actors = [
            RolloutActor.options(num_cpus=a.num_cpus, max_restarts=-1, scheduling_strategy="SPREAD").remote(
                hosts.make_worker, actor_settings, i, self.epsilons[i], self.names, seed + 1000 * (i + 1)
            )
            for i in range(a.num_actors)
        ]
        # Evaluation has its own process, on the newest published weights; it never holds up training.
        self.evaluator = None
        if hosts.make_evaluator is not None:
            self.evaluator = EvalActor.options(num_cpus=0, max_restarts=-1).remote(hosts.make_evaluator, self.names)
        self.nodes: set[str] = set()
        self.learner_node = learner_node

    def wait_ready(self, timeout_s: float = 300.0) -> dict:
        try:
            where = ray.get([a.where.remote() for a in self.actors] + [self.learner.where.remote()], timeout=timeout_s)
        except GetTimeoutError:
            need = self.cfg.actors.num_actors * self.cfg.actors.num_cpus + 1
            have = ray.cluster_resources().get("CPU", 0)
            raise PlacementError(
                f"the actors could not be placed within {timeout_s:.0f}s: the job asks for {need:g} CPUs "
                f"(actors.num_actors x actors.num_cpus + 1 for the learner) and the cluster has {have:g}"
            ) from None
        self.nodes.update(w["node_id"] for w in where[:-1])
        self.learner_node = where[-1]["node_id"]
        self.pids = {"learner": where[-1]["pid"], "actors": [w["pid"] for w in where[:-1]]}
        return where[-1]

    def shutdown(self) -> None:
        """End the run's actors (when the Ray instance outlives the run: a test session, a notebook)."""
        for handle in [*self.actors, self.learner, *self.shards, self.limiter, self.store, self.evaluator]:
            if handle is not None:
                ray.kill(handle, no_restart=True)

    def processes(self) -> dict:
        """The process ids of the run's actors as started (restarted ones get new ids), written to the run
        directory so an operator can find a process."""
        return {**self.pids, "shards": self.shard_pids}
