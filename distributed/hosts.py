"""Ray hosts for the plain algorithm classes: rollout workers, replay shards and the weight store (the learner's is
distributed/learner_host.py).

Rollout actors and the learner run free (each loops until stopped); the shards are asyncio actors whose rate
limiter holds inserts or samples; the driver only starts, supervises and reads progress. Episodes and sampled
batches cross process boundaries as msgpack bytes of numpy buffers, checked on arrival; weights as numpy arrays that
the weight store puts into the object store itself (distributed/codec.py).

Hosts are built from factories and plain arguments (as Acme's distributed layer builds nodes from factories):
`make_worker(epsilon, seed) -> RolloutWorker` and `make_learner() -> Learner` come from the application, so this
package knows nothing of configs, tasks or run directories.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from actors.rollout import RolloutWorker
from distributed.codec import weights_tensors
from distributed.weights import Published, WeightStore
from replay.durable import DurableShard
from replay.format import decode_episodes, pack_arrays
from replay.rate_limiter import RateLimiter
from replay.shard import ReplayShard

# Fields an actor sends to replay; the acting network's Q-values stay behind.
REPLAY_FIELDS = ("prompts", "actions", "rewards", "lengths", "priorities", "versions")
# Failed pushes an actor holds for a restarting shard before it drops the oldest (and counts them lost).
MAX_UNSENT = 64
MAX_RETURNS = 1000  # episode returns an actor reports per progress() call (the newest)
WAIT_S = 0.2  # a waiting rollout actor checks for new weights (and for stop()) this often


@dataclass(frozen=True)
class ActorSettings:
    """What a rollout host needs beyond its worker: the config's actors.* values of these names (their defaults and
    documentation live there, in tokenq/config.py's ActorConfig)."""

    torch_threads: int
    max_pushes_in_flight: int  # unacknowledged replay inserts before the actor waits
    pull_every: int  # rollout batches between weight-store checks

    @classmethod
    def of(cls, actors) -> ActorSettings:
        """From the config's `actors` section."""
        return cls(**{f.name: getattr(actors, f.name) for f in dataclasses.fields(cls)})


def actor_names(run_id: str, num_shards: int) -> dict:
    return {
        "namespace": "tokenq",
        "store": f"{run_id}-weights",
        "limiter": f"{run_id}-rate-limiter",
        "shards": [f"{run_id}-shard-{i}" for i in range(num_shards)],
    }


def lookup(names: dict) -> tuple:
    get = lambda name: ray.get_actor(name, namespace=names["namespace"])  # noqa: E731
    return get(names["store"]), [get(n) for n in names["shards"]]


def node_id() -> str:
    return ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=0)
class WeightStoreActor:
    """The weight store. It puts every published version into the object store itself, so it owns them: a
    learner's death loses no published weights, and actors read them zero-copy as numpy arrays."""

    def __init__(self) -> None:
        self.store = WeightStore()

    def publish(self, version: int, arrays: dict, published_at: float = 0.0) -> bool:
        if version <= self.store.version:
            return False
        return self.store.publish(version, [ray.put(arrays), published_at])

    def restore(self, version: int, arrays: dict, published_at: float = 0.0) -> None:
        self.store.restore(version, [ray.put(arrays), published_at])

    def latest(self, have_version: int, have_generation: int | None = None) -> Published | None:
        """WeightStore.latest, its payload [weights ref, publish time] (the ref nested in a list, so Ray passes it
        unresolved)."""
        return self.store.latest(have_version, have_generation)

    def current_version(self) -> int:
        return self.store.version


@ray.remote(num_cpus=0)
class RateLimiterActor:
    """The replay's rate limiter (replay/rate_limiter.py), one per table of S shards, as an asyncio actor: an
    `insert` call returns once actors are not too far ahead, a `sample` call once the learner is not; a held call
    holds up no other."""

    def __init__(self, samples_per_insert: float, min_size_to_sample: int, error_buffer: float):
        self.limiter = RateLimiter(samples_per_insert, min_size_to_sample, error_buffer)
        self.changed: asyncio.Condition | None = None  # made in the actor's event loop, on first use

    async def _hold(self, allowed, side: str) -> None:
        if allowed():
            return
        self.changed = self.changed or asyncio.Condition()
        t0 = time.perf_counter()
        async with self.changed:
            await self.changed.wait_for(allowed)
        self.limiter.blocked(side, time.perf_counter() - t0)

    async def _changed(self) -> None:
        if self.changed is not None:
            async with self.changed:
                self.changed.notify_all()

    async def insert(self, transitions: int, episodes: int) -> None:
        """Returns when an actor may insert this many transitions (and counts them); (0, 0) only waits, so that an
        actor generates its next episodes with the weights of when it may insert them, not before."""
        await self._hold(self.limiter.can_insert, "insert")
        if transitions or episodes:
            self.limiter.inserted_now(transitions, episodes)
            await self._changed()

    async def sample(self, consumed: int) -> float:
        """Count the transitions the learner sampled since its last call; returns, once it may sample again, how
        many transitions it may sample before it asks next (the headroom within the error buffer)."""
        self.limiter.sampled_now(consumed)
        await self._changed()
        await self._hold(self.limiter.can_sample, "sample")
        return self.limiter.headroom()

    async def seed(self, episodes: int) -> None:
        """A resumed run's shards already hold `episodes`: the ratio's clock starts once they reach the minimum."""
        if not self.limiter.started and self.limiter.episodes < episodes:
            self.limiter.inserted_now(0, episodes - self.limiter.episodes)
            await self._changed()

    async def stats(self) -> dict:
        return self.limiter.state()


@ray.remote(num_cpus=0)
class ReplayShardActor:
    """One replay shard, an asyncio actor. With `snapshot_dir` it snapshots itself every `snapshot_every_s`
    seconds in the background and, when Ray restarts it after a crash (or a resumed run starts it), comes back from
    its newest snapshot."""

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

    async def add(self, data: bytes) -> int:
        batch = decode_episodes(data)
        return self.durable.add(batch) if self.durable else self.shard.add(batch)

    async def sample(self, batch_size: int, beta: float, min_version: int | None = None) -> bytes | None:
        """A packed SampledBatch with the shard's new total priority and size; None when it holds nothing to hand
        out (empty, or every episode older than `min_version`)."""
        if self.shard.size == 0 or self.shard.tree.total <= 0:
            return None
        try:
            batch = self.shard.sample(batch_size, beta, min_version)
        except ValueError:
            return None
        return pack_arrays(batch.as_dict(), {"total": self.shard.tree.total, "size": self.shard.size})

    async def update_priorities(self, slots: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> int:
        return self.shard.update_priorities(slots, generations, priorities)

    async def snapshot(self) -> int:
        """A snapshot of the state as it is now, on disk before this returns (the final one); returns the
        transitions it covers."""
        if self.durable is None:
            return 0
        await self._written()  # a background snapshot may be running
        covered = self.durable.snapshot(wait=False)
        await self._written()
        if self.durable.write_error is not None:
            raise self.durable.write_error
        return covered

    async def _written(self) -> None:
        while self.durable.writer is not None and self.durable.writer.is_alive():
            await asyncio.sleep(0.01)

    async def stats(self) -> dict:
        d = self.durable
        faults = {}
        if d is not None:
            faults = {"lost": d.lost, "starts": d.starts, "snapshots": d.snapshots, "lost_window_s": d.lost_window_s}
        return {**self.shard.stats(), **faults, "node_id": node_id(), "pid": os.getpid()}


@ray.remote(max_concurrency=2)
class RolloutActor:
    """Runs free: generates episodes with its own epsilon, pushes them to the shards round-robin with a bounded
    number of inserts in flight (a shard holds an insert while the rate limiter says actors are ahead), and pulls
    newer weights from the store on its schedule. The driver only reads `progress()` and calls `stop()`."""

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
        self.limiter = ray.get_actor(names["limiter"], namespace=names["namespace"])
        self.settings, self.index, self.store, self.shards = settings, index, store, shards
        self.next_shard = index % len(shards)
        self.in_flight: dict = {}  # push ref -> (shard index, packed episodes, transitions)
        self.unsent: deque = deque()  # pushes that failed because their shard died: sent again
        self.batches = 0
        self.generation = -1  # of the weight store: takes whatever the store holds first
        self.stopping = False
        self.totals = {"transitions": 0, "episodes": 0, "push_lost": 0, "pulls": 0}
        self.returns: list[float] = []  # since the last progress()

    def _pull_weights(self) -> None:
        """Newer weights, read zero-copy from the object store; a store that is restarting is asked again later."""
        try:
            reply = ray.get(self.store.latest.remote(self.worker.weights_version, self.generation), timeout=30)
            if reply is None:
                return
            version, (weights_ref, _), generation = reply
            arrays = ray.get(weights_ref, timeout=60)
        except (RayError, GetTimeoutError):
            return
        self.worker.set_weights(weights_tensors(arrays), version)
        self.generation = generation
        self.totals["pulls"] += 1

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

    def _wait_for_room(self) -> None:
        """Until at most max_pushes_in_flight inserts are unacknowledged (or the actor is stopped)."""
        while len(self.in_flight) > self.settings.max_pushes_in_flight and not self.stopping:
            excess = len(self.in_flight) - self.settings.max_pushes_in_flight
            done, _ = ray.wait(list(self.in_flight), num_returns=excess, timeout=WAIT_S)
            self._reap(done)
            if not done:
                self._pull_weights()  # an actor that waits still takes new weights: its next episodes use them

    def _insert_allowed(self, transitions: int, episodes: int) -> bool:
        """Wait for the rate limiter to let this insert through; False when the actor was stopped meanwhile."""
        permit = None
        while not self.stopping:
            try:
                permit = permit or self.limiter.insert.remote(transitions, episodes)
                done, _ = ray.wait([permit], timeout=WAIT_S)
                if done:
                    ray.get(permit)
                    return True
                self._pull_weights()  # held: new weights still arrive
            except RayActorError:  # the limiter is restarting: ask again
                permit = None
                time.sleep(0.5)
        return False

    def run(self) -> dict:
        """Generate and push until stop(); returns the final progress."""
        while not self.stopping:
            if not self._insert_allowed(0, 0):  # wait for room first: the episodes are generated fresh
                break
            if self.batches % self.settings.pull_every == 0:
                self._pull_weights()
            batch = self.worker.rollout()
            self.batches += 1
            data = pack_arrays({k: v for k, v in batch.as_dict().items() if k in REPLAY_FIELDS})
            if not self._insert_allowed(batch.num_transitions, len(batch.lengths)):
                break  # stopped while held
            self.totals["push_lost"] += self._resend()
            self._push(self.next_shard, data, batch.num_transitions)
            self.next_shard = (self.next_shard + 1) % len(self.shards)
            self.returns.extend(batch.returns.tolist())
            self.totals["transitions"] += batch.num_transitions
            self.totals["episodes"] += len(batch.lengths)
            self._wait_for_room()
        return self.progress()

    def stop(self) -> None:
        self.stopping = True

    def progress(self) -> dict:
        """Totals since this process started, the returns since the last call, the weights version acted with."""
        returns, self.returns = self.returns, []
        return {
            **self.totals,
            "returns": returns[-MAX_RETURNS:],
            "weights_version": self.worker.weights_version,
            "epsilon": self.worker.epsilon,
            "node_id": node_id(),
            "pid": os.getpid(),
        }

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid()}


@ray.remote(max_concurrency=2)
class EvalActor:
    """Evaluates the newest published weights in its own process, so evaluation never holds up training.
    `make_evaluator()` (from the application) returns evaluate(state dict) -> a JSON-able result."""

    def __init__(self, make_evaluator: Callable[[], Callable[[dict], dict]], names: dict):
        torch.set_num_threads(1)
        self.evaluate_weights = make_evaluator()
        self.store = ray.get_actor(names["store"], namespace=names["namespace"])
        self.evaluated: tuple[int, dict] | None = None  # (version, weights) of the last evaluation

    def evaluate(self, min_version: int, wait_s: float = 5.0) -> dict | None:
        """The newest weights once their version is at least `min_version`: {version, published_at, result}; None
        when no such version was published within `wait_s` (the caller asks again)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                reply = ray.get(self.store.latest.remote(min_version - 1), timeout=30)
                if reply is not None:
                    version, (weights_ref, published_at), _ = reply
                    arrays = ray.get(weights_ref, timeout=60)
                    break
            except (RayError, GetTimeoutError):
                pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        result = self.evaluate_weights(weights_tensors(arrays))
        self.evaluated = version, arrays
        return {"version": version, "published_at": published_at, "result": result}

    def evaluated_weights(self) -> tuple[int, dict] | None:
        """(version, weights as arrays) of the last evaluation; None before the first (or after a restart)."""
        return self.evaluated

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid()}
