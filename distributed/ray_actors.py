"""Ray hosts for the plain algorithm classes: rollout workers, replay shards, the learner, the weight store.

Episodes, sampled batches and weights cross process boundaries as msgpack bytes of numpy buffers
(distributed/codec.py), checked on arrival: nothing a process receives from another is unpickled by our code.
Weights go out as one `ray.put` per published version. Nothing here holds algorithm logic of its own.
"""

from __future__ import annotations

import os
import time
from collections import deque

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError, RayError

from distributed.codec import pack_arrays, pack_weights, unpack_weights
from distributed.components import build_heldout, build_task, init_learner, make_worker, resolve_net_config
from distributed.config import config_from_dict
from distributed.replay import DurableShard, ReplayShard, decode_episodes, decode_sample
from distributed.weights import WeightStore
from learner.learner import Learner

# Fields an actor sends to replay; the acting network's Q-values stay behind.
REPLAY_FIELDS = ("prompts", "actions", "rewards", "lengths", "priorities")
# Failed pushes an actor holds for a restarting shard before it drops the oldest (and counts them lost).
MAX_UNSENT = 64


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
    """One replay shard. With `snapshot_dir` it snapshots itself every `snapshot_every_s` seconds and, when Ray
    restarts it after a crash (or a resumed run starts it), comes back from its newest snapshot."""

    def __init__(
        self,
        capacity: int,
        prompt_len: int,
        max_steps: int,
        alpha: float,
        seed: int,
        eps: float,
        snapshot_dir: str = "",
        name: str = "shard-0",
        snapshot_every_s: float = 0.0,
    ):
        self.shard = ReplayShard(capacity, prompt_len, max_steps, alpha, seed, eps)
        self.durable = DurableShard(self.shard, snapshot_dir, name, snapshot_every_s) if snapshot_dir else None

    def add(self, data: bytes) -> int:
        batch = decode_episodes(data)
        return self.durable.add(batch) if self.durable else self.shard.add(batch)

    def sample(self, batch_size: int, beta: float) -> bytes | None:
        if self.shard.size == 0:
            return None
        return self.shard.sample(batch_size, beta).pack()

    def update_priorities(self, slots: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> int:
        return self.shard.update_priorities(slots, generations, priorities)

    def snapshot(self) -> int:
        return self.durable.snapshot() if self.durable else 0

    def stats(self) -> dict:
        d = self.durable
        faults = {}
        if d is not None:
            faults = {"lost": d.lost, "starts": d.starts, "snapshots": d.snapshots, "lost_window_s": d.lost_window_s}
        return {**self.shard.stats(), **faults, "node_id": node_id(), "pid": os.getpid()}


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
        self.in_flight: dict = {}  # push ref -> (shard index, packed episodes, transitions)
        self.unsent: deque = deque()  # pushes that failed because their shard died: sent again
        self.batches = 0
        self.generation = -1  # of the weight store: takes whatever the store holds first

    def _pull_weights(self) -> None:
        reply = ray.get(self.store.latest.remote(self.worker.weights_version, self.generation))
        if reply is not None:
            version, (weights_ref,), self.generation = reply
            self.worker.set_weights(unpack_weights(ray.get(weights_ref)), version)

    def _push(self, i: int, data: bytes, n: int) -> None:
        self.in_flight[self.shards[i].add.remote(data)] = (i, data, n)

    def _reap(self, refs: list) -> None:
        """Acknowledge finished pushes; a push whose shard died is kept to be sent again (Ray restarts the shard)."""
        for ref in refs:
            push = self.in_flight.pop(ref)
            try:
                ray.get(ref)
            except RayActorError:
                self.unsent.append(push)

    def _resend(self) -> int:
        """Send the failed pushes again; beyond MAX_UNSENT the oldest are dropped. Returns transitions dropped."""
        dropped = 0
        while len(self.unsent) > MAX_UNSENT:
            dropped += self.unsent.popleft()[2]
        for _ in range(len(self.unsent)):
            self._push(*self.unsent.popleft())
        return dropped

    def run(self, num_batches: int) -> dict:
        """Generate and push `num_batches` batches; returns what the driver needs for metrics and rate limiting."""
        returns, transitions, episodes, push_lost = [], 0, 0, 0
        for _ in range(num_batches):
            if self.batches % self.cfg.actors.pull_every == 0:
                self._pull_weights()
            batch = self.worker.rollout()
            self.batches += 1
            data = pack_arrays({k: v for k, v in batch.as_dict().items() if k in REPLAY_FIELDS})
            push_lost += self._resend()
            self._push(self.next_shard, data, batch.num_transitions)
            self.next_shard = (self.next_shard + 1) % len(self.shards)
            if len(self.in_flight) > self.cfg.actors.max_pushes_in_flight:
                excess = len(self.in_flight) - self.cfg.actors.max_pushes_in_flight
                done, _ = ray.wait(list(self.in_flight), num_returns=excess)
                self._reap(done)
            returns.extend(batch.returns.tolist())
            transitions += batch.num_transitions
            episodes += len(batch.lengths)
        return {
            "actor": self.index,
            "returns": returns,
            "transitions": transitions,
            "episodes": episodes,
            "push_lost": push_lost,
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
        self.learner.mark_good()
        # The store exists before the learner; the shards, placed beside it, are looked up at the first update.
        self.cfg, self.names, self.shards = cfg, names, None
        self.store = ray.get_actor(names["store"], namespace=names["namespace"])
        self.in_flight: deque = deque()  # (shard index, sample ref)
        self.next_shard = 0
        self.publish()

    def _weights_ref(self) -> ray.ObjectRef:
        # pack_weights copies every tensor into its bytes: no CPU copy of the state dict is needed first.
        return ray.put(pack_weights(self.learner.online.state_dict()))

    def publish(self) -> int:
        self.store.publish.remote(self.learner.updates, [self._weights_ref()])
        return self.learner.updates

    def load_state(self, state: dict | None) -> int:
        """Continue from a checkpoint's learner state (a resumed run, or this learner replacing one that died;
        None: from the start). The store is rolled back to it, so actors act with it at once."""
        if state is not None:
            self.learner.load_state_dict(state)
        self.learner.mark_good()
        self.store.restore.remote(self.learner.updates, [self._weights_ref()])
        return self.learner.updates

    def _prefetch(self, beta: float) -> None:
        while len(self.in_flight) < self.cfg.replay.prefetch * len(self.shards):
            i = self.next_shard
            self.in_flight.append((i, self.shards[i].sample.remote(self.cfg.learner.batch_size, beta)))
            self.next_shard = (i + 1) % len(self.shards)

    def train(self, max_updates: int, budget_transitions: float, beta: float) -> dict:
        """Up to `max_updates` updates, stopping once `budget_transitions` have been trained (the driver's
        samples-per-insert allowance). A sample lost to a dying shard is skipped; Ray restarts the shard."""
        if self.shards is None:
            _, self.shards = lookup(self.names)
        sums: dict[str, float] = {}
        done = trained = empty = lost_samples = 0
        wait_s = 0.0
        t0 = time.perf_counter()
        while done < max_updates and trained < budget_transitions and empty < 2 * len(self.shards):
            self._prefetch(beta)
            i, ref = self.in_flight.popleft()
            t_wait = time.perf_counter()
            try:
                data = ray.get(ref)
            except RayError:  # the shard died with the request (or its reply) in flight; Ray restarts it
                lost_samples += 1
                empty += 1
                continue
            finally:
                wait_s += time.perf_counter() - t_wait
            if data is None:
                empty += 1
                continue
            batch = decode_sample(data)
            metrics, priorities = self.learner.update(batch)
            trained += int(batch.lengths.sum())
            if priorities is None:  # non-finite: skipped by the learner
                continue
            self.shards[i].update_priorities.remote(batch.slots, batch.generations, priorities)  # fire and forget
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            done += 1
            if self.learner.updates % self.cfg.train.publish_every == 0:
                self.publish()
        return {
            "updates": self.learner.updates,
            "transitions_trained": self.learner.transitions_trained,
            "done": done,
            "metrics": {k: v / max(done, 1) for k, v in sums.items()},
            "busy_s": time.perf_counter() - t0,
            "wait_s": wait_s,
            "lost_samples": lost_samples,
            "nonfinite_updates": self.learner.nonfinite_updates,
            "rollbacks": self.learner.rollbacks,
        }

    def state_dict(self) -> dict:
        """The learner's state on the CPU, for a checkpoint; it also becomes the state a rollback returns to."""
        return self.learner.mark_good()

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid(), "device": str(self.learner.device)}
