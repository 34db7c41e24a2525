"""Ray hosts for the plain algorithm classes: rollout workers, replay shards, the learner, the weight store.

Episodes cross process boundaries as dicts of numpy arrays (Ray ships the buffers out of band), weights as one
`ray.put` of a state dict per published version. Nothing here holds algorithm logic of its own.
"""

from __future__ import annotations

import os
import time
from collections import deque

import numpy as np
import ray
import torch

from actors.rollout import EpisodeBatch
from distributed.components import build_heldout, build_task, init_learner, make_worker, resolve_net_config
from distributed.config import config_from_dict
from distributed.replay import ReplayShard, SampledBatch
from distributed.weights import WeightStore
from learner.learner import Learner

# Fields an actor sends to replay; the acting network's Q-values stay behind.
REPLAY_FIELDS = ("prompts", "actions", "rewards", "lengths", "priorities")


def _to_cpu(obj):
    """A copy of nested containers with every tensor on the CPU, so a driver without a GPU can load it."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def actor_names(run_id: str, num_shards: int) -> dict:
    return {
        "namespace": "tokenq",
        "store": f"{run_id}-weights",
        "shards": [f"{run_id}-shard-{i}" for i in range(num_shards)],
    }


def lookup(names: dict) -> tuple:
    get = lambda name: ray.get_actor(name, namespace=names["namespace"])  # noqa: E731
    return get(names["store"]), [get(n) for n in names["shards"]]


def node_id() -> str:
    return ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=0)
class WeightStoreActor(WeightStore):
    pass


@ray.remote(num_cpus=0)
class ReplayShardActor:
    def __init__(self, capacity: int, prompt_len: int, max_steps: int, alpha: float, seed: int, eps: float):
        self.shard = ReplayShard(capacity, prompt_len, max_steps, alpha, seed, eps)

    def add(self, arrays: dict[str, np.ndarray]) -> int:
        return self.shard.add(EpisodeBatch(**arrays))

    def sample(self, batch_size: int, beta: float) -> dict[str, np.ndarray] | None:
        if self.shard.size == 0:
            return None
        return self.shard.sample(batch_size, beta).as_dict()

    def update_priorities(self, slots: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> int:
        return self.shard.update_priorities(slots, generations, priorities)

    def stats(self) -> dict:
        return {**self.shard.stats(), "node_id": node_id(), "pid": os.getpid()}


@ray.remote
class RolloutActor:
    """Generates episodes with its own epsilon, pushes them to the shards round-robin with a bounded number of
    inserts in flight, and pulls newer weights from the store on its schedule."""

    def __init__(self, config: dict, index: int, epsilon: float, names: dict, seed: int):
        cfg = config_from_dict(config)
        torch.set_num_threads(cfg.actors.torch_threads)
        task = build_task(cfg)
        heldout = build_heldout(cfg, task)
        self.worker = make_worker(cfg, task, resolve_net_config(cfg, task), heldout, epsilon, seed)
        # Looked up by name, not passed as handles: constructor arguments stay plain values, so a restarted actor
        # is rebuilt from them alone.
        store, shards = lookup(names)
        self.cfg, self.index, self.store, self.shards = cfg, index, store, shards
        self.next_shard = index % len(shards)
        self.in_flight: list = []
        self.batches = 0

    def _pull_weights(self) -> None:
        reply = ray.get(self.store.latest.remote(self.worker.weights_version))
        if reply is not None:
            version, (weights_ref,) = reply
            self.worker.set_weights(ray.get(weights_ref), version)

    def run(self, num_batches: int) -> dict:
        """Generate and push `num_batches` batches; returns what the driver needs for metrics and rate limiting."""
        returns, transitions, episodes = [], 0, 0
        for _ in range(num_batches):
            if self.batches % self.cfg.actors.pull_every == 0:
                self._pull_weights()
            batch = self.worker.rollout()
            self.batches += 1
            arrays = {k: v for k, v in batch.as_dict().items() if k in REPLAY_FIELDS}
            self.in_flight.append(self.shards[self.next_shard].add.remote(arrays))
            self.next_shard = (self.next_shard + 1) % len(self.shards)
            if len(self.in_flight) > self.cfg.actors.max_pushes_in_flight:
                excess = len(self.in_flight) - self.cfg.actors.max_pushes_in_flight
                _, self.in_flight = ray.wait(self.in_flight, num_returns=excess)
            returns.extend(batch.returns.tolist())
            transitions += batch.num_transitions
            episodes += len(batch.lengths)
        return {
            "actor": self.index,
            "returns": returns,
            "transitions": transitions,
            "episodes": episodes,
            "weights_version": self.worker.weights_version,
            "epsilon": self.worker.epsilon,
            "node_id": node_id(),
            "pid": os.getpid(),
        }

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid()}


@ray.remote
class LearnerActor:
    """Runs Double-DQN updates on batches prefetched from the shards; writes priorities back without waiting and
    publishes its weights to the store every `train.publish_every` updates."""

    def __init__(self, config: dict, names: dict, seed: int):
        cfg = config_from_dict(config)
        if cfg.train.torch_threads:
            torch.set_num_threads(cfg.train.torch_threads)
        self.learner = Learner(cfg.learner, resolve_net_config(cfg, build_task(cfg)), seed=seed)
        if cfg.init.from_run:
            init_learner(self.learner, cfg)
        # The store exists before the learner; the shards, placed beside it, are looked up at the first update.
        self.cfg, self.names, self.shards = cfg, names, None
        self.store = ray.get_actor(names["store"], namespace=names["namespace"])
        self.in_flight: deque = deque()  # (shard index, sample ref)
        self.next_shard = 0
        self.publish()

    def publish(self) -> int:
        weights_ref = ray.put(self.learner.get_weights())
        self.store.publish.remote(self.learner.updates, [weights_ref])
        return self.learner.updates

    def _prefetch(self, beta: float) -> None:
        while len(self.in_flight) < self.cfg.replay.prefetch * len(self.shards):
            i = self.next_shard
            self.in_flight.append((i, self.shards[i].sample.remote(self.cfg.learner.batch_size, beta)))
            self.next_shard = (i + 1) % len(self.shards)

    def train(self, max_updates: int, budget_transitions: float, beta: float) -> dict:
        """Up to `max_updates` updates, stopping once `budget_transitions` have been trained (the driver's
        samples-per-insert allowance)."""
        if self.shards is None:
            _, self.shards = lookup(self.names)
        sums: dict[str, float] = {}
        done = trained = empty = 0
        wait_s = 0.0
        t0 = time.perf_counter()
        while done < max_updates and trained < budget_transitions and empty < 2 * len(self.shards):
            self._prefetch(beta)
            i, ref = self.in_flight.popleft()
            t_wait = time.perf_counter()
            arrays = ray.get(ref)
            wait_s += time.perf_counter() - t_wait
            if arrays is None:
                empty += 1
                continue
            batch = SampledBatch(**arrays)
            metrics, priorities = self.learner.update(batch)
            self.shards[i].update_priorities.remote(batch.slots, batch.generations, priorities)  # fire and forget
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            done += 1
            trained += int(batch.lengths.sum())
            if self.learner.updates % self.cfg.train.publish_every == 0:
                self.publish()
        return {
            "updates": self.learner.updates,
            "transitions_trained": self.learner.transitions_trained,
            "done": done,
            "metrics": {k: v / max(done, 1) for k, v in sums.items()},
            "busy_s": time.perf_counter() - t0,
            "wait_s": wait_s,
        }

    def state_dict(self) -> dict:
        return _to_cpu(self.learner.state_dict())

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid(), "device": str(self.learner.device)}
