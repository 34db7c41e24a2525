"""Ray hosts for the plain algorithm classes: rollout workers, replay shards, the learner, the weight store.

Episodes, sampled batches and weights cross process boundaries as msgpack bytes of numpy buffers
(distributed/codec.py), checked on arrival: nothing a process receives from another is unpickled by our code.
Weights go out as one `ray.put` per published version. Nothing here holds algorithm logic of its own.

Hosts are built from factories and plain arguments (as Acme's distributed layer builds nodes from factories):
`make_worker(epsilon, seed) -> RolloutWorker` and `make_learner() -> Learner` come from the application, so this
package knows nothing of configs, tasks or run directories.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError, RayError

from actors.rollout import RolloutWorker
from distributed.codec import pack_weights, unpack_weights
from distributed.weights import WeightStore
from learner.learner import Learner
from replay.durable import DurableShard
from replay.format import decode_episodes, decode_sample, pack_arrays
from replay.shard import ReplayShard

# Fields an actor sends to replay; the acting network's Q-values stay behind.
REPLAY_FIELDS = ("prompts", "actions", "rewards", "lengths", "priorities")
# Failed pushes an actor holds for a restarting shard before it drops the oldest (and counts them lost).
MAX_UNSENT = 64


@dataclass(frozen=True)
class ActorSettings:
    """What a rollout host needs beyond its worker (actors.* in the config)."""

    torch_threads: int = 1
    max_pushes_in_flight: int = 4  # unacknowledged replay inserts before the actor waits
    pull_every: int = 1  # rollout batches between weight-store checks


@dataclass(frozen=True)
class LearnerSettings:
    """What the learner host needs beyond its learner."""

    batch_size: int = 32  # episodes per update (learner.batch_size)
    prefetch: int = 2  # sample requests in flight per shard (replay.prefetch)
    publish_every: int = 10  # updates between weight publications (train.publish_every)
    torch_threads: int = 0  # 0 keeps torch's default (train.torch_threads)


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
        return pack_arrays(self.shard.sample(batch_size, beta).as_dict())

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

    def __init__(
        self,
        make_worker: Callable[[float, int], RolloutWorker],
        settings: ActorSettings,
        index: int,
        epsilon: float,
        names: dict,
        seed: int,
    ):
        torch.set_num_threads(settings.torch_threads)
        self.worker = make_worker(epsilon, seed)
        # Looked up by name, not passed as handles: constructor arguments stay plain values, so a restarted actor
        # is rebuilt from them alone.
        store, shards = lookup(names)
        self.settings, self.index, self.store, self.shards = settings, index, store, shards
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
            if self.batches % self.settings.pull_every == 0:
                self._pull_weights()
            batch = self.worker.rollout()
            self.batches += 1
            data = pack_arrays({k: v for k, v in batch.as_dict().items() if k in REPLAY_FIELDS})
            push_lost += self._resend()
            self._push(self.next_shard, data, batch.num_transitions)
            self.next_shard = (self.next_shard + 1) % len(self.shards)
            if len(self.in_flight) > self.settings.max_pushes_in_flight:
                excess = len(self.in_flight) - self.settings.max_pushes_in_flight
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

    def __init__(self, make_learner: Callable[[], Learner], settings: LearnerSettings, names: dict):
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self.learner = make_learner()
        self.learner.mark_good()
        # The store exists before the learner; the shards, placed beside it, are looked up at the first update.
        self.settings, self.names, self.shards = settings, names, None
        self.store = ray.get_actor(names["store"], namespace=names["namespace"])
        self.in_flight: deque = deque()  # (shard index, sample ref)
        self.next_shard = 0
        self.publish()

    def _weights_ref(self) -> ray.ObjectRef:
        # pack_weights copies every tensor into its bytes: no CPU copy of the state dict is needed first. With LoRA
        # the state dict is the adapters and heads alone: actors hold the base model already.
        data = pack_weights(self.learner.online.state_dict())
        self.publish_bytes = len(data)
        return ray.put(data)

    def weights_info(self) -> dict:
        """What one publication sends, and how many parameters train."""
        return {
            "trainable_parameters": self.learner.trainable_parameters(),
            "weights_bytes_per_publish": self.publish_bytes,
        }

    def publish(self) -> int:
        self.store.publish.remote(self.learner.updates, [self._weights_ref()])
        self.published = self.learner.updates
        return self.published

    def load_state(self, state: dict | None) -> int:
        """Continue from a checkpoint's learner state (a resumed run, or this learner replacing one that died;
        None: from the start). The store is rolled back to it, so actors act with it at once."""
        if state is not None:
            self.learner.load_state_dict(state)
        self.learner.mark_good()
        self.store.restore.remote(self.learner.updates, [self._weights_ref()])
        self.published = self.learner.updates
        return self.published

    def _prefetch(self, beta: float) -> None:
        while len(self.in_flight) < self.settings.prefetch * len(self.shards):
            i = self.next_shard
            self.in_flight.append((i, self.shards[i].sample.remote(self.settings.batch_size, beta)))
            self.next_shard = (i + 1) % len(self.shards)

    def train(self, max_updates: int, budget_transitions: float, beta: float) -> dict:
        """Up to `max_updates` updates, stopping once `budget_transitions` have been trained (the driver's
        samples-per-insert allowance). A sample lost to a dying shard is skipped; Ray restarts the shard."""
        if self.shards is None:
            _, self.shards = lookup(self.names)
        sums: dict[str, float] = {}
        done = trained = empty = lost_samples = 0
        nonfinite_loss = None
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
            if priorities is None:  # non-finite: skipped by the learner; its loss is reported, not dropped
                nonfinite_loss = metrics["td_loss"]
                continue
            self.shards[i].update_priorities.remote(batch.slots, batch.generations, priorities)  # fire and forget
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            done += 1
            if self.learner.updates % self.settings.publish_every == 0:
                self.publish()
        return {
            "updates": self.learner.updates,
            "transitions_trained": self.learner.transitions_trained,
            "done": done,
            "metrics": {k: v / max(done, 1) for k, v in sums.items()}
            | ({"td_loss": nonfinite_loss} if nonfinite_loss is not None else {}),
            "published_version": self.published,
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
