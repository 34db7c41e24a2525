"""A prioritized replay shard that stores whole episodes, so the learner trains on whole sequences.

Plain Python (no ray): the serial driver calls it directly, distributed/ray_actors.py hosts it as an actor.
Priorities are per sequence (R2D2's 0.9 max + 0.1 mean of |TD|), sampling is proportional to p^alpha (Schaul et al.
2016), and the oldest episode is evicted first once the shard is full.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actors.rollout import EpisodeBatch
from distributed.codec import (
    CodecError,
    pack_arrays,
    read_sealed,
    rng_state,
    set_rng_state,
    unpack_arrays,
    write_sealed,
)
from distributed.sum_tree import SumTree

# What an episode batch from an actor must hold: name -> (dtype kind, ndim).
EPISODE_SCHEMA = {"prompts": ("i", 2), "actions": ("i", 2), "rewards": ("f", 2), "lengths": ("i", 1)}
SAMPLE_SCHEMA = {**EPISODE_SCHEMA, "weights": ("f", 1), "slots": ("i", 1), "generations": ("i", 1)}
_COUNTERS = ("next_slot", "size", "inserted_episodes", "inserted_transitions", "sampled_transitions")


class SnapshotError(ValueError):
    pass


def decode_episodes(data: bytes) -> EpisodeBatch:
    """An actor's packed episodes, checked for types and consistent shapes."""
    arrays, _ = unpack_arrays(data, "an episode batch", EPISODE_SCHEMA)
    n = len(arrays["lengths"])
    T = arrays["actions"].shape[1]
    same_rows = all(len(arrays[k]) == n for k in ("prompts", "actions", "rewards"))
    if not same_rows or arrays["rewards"].shape[1] != T or (n and (arrays["lengths"].max() > T)):
        raise CodecError("an episode batch has arrays of inconsistent shapes")
    pr = arrays.get("priorities")
    return EpisodeBatch(arrays["prompts"], arrays["actions"], arrays["rewards"], arrays["lengths"], priorities=pr)


def decode_sample(data: bytes) -> SampledBatch:
    arrays, _ = unpack_arrays(data, "a sampled batch", SAMPLE_SCHEMA)
    return SampledBatch(**{k: arrays[k] for k in SAMPLE_SCHEMA})


@dataclass
class SampledBatch:
    """A prioritized sample of episodes; `slots` and `generations` identify them for priority updates."""

    prompts: np.ndarray  # (B, P) int
    actions: np.ndarray  # (B, T) int, T = the longest sampled episode
    rewards: np.ndarray  # (B, T) float32
    lengths: np.ndarray  # (B,) int
    weights: np.ndarray  # (B,) float32 importance weights, max 1
    slots: np.ndarray  # (B,) int
    generations: np.ndarray  # (B,) int: the insert count of each slot, so stale updates are dropped

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)

    def pack(self) -> bytes:
        return pack_arrays(self.as_dict())


def importance_weights(probs: np.ndarray, size: int, beta: float) -> np.ndarray:
    """w_i = (N * P(i))^-beta, normalised by the batch maximum so that updates are only ever scaled down."""
    w = (size * probs) ** (-beta)
    return (w / w.max()).astype(np.float32)


class ReplayShard:
    def __init__(
        self,
        capacity: int,
        prompt_len: int,
        max_steps: int,
        alpha: float = 0.6,
        seed: int = 0,
        priority_eps: float = 1e-3,
    ):
        self.capacity, self.alpha, self.priority_eps = capacity, alpha, priority_eps
        self.prompts = np.zeros((capacity, prompt_len), dtype=np.int32)
        self.actions = np.zeros((capacity, max_steps), dtype=np.int32)
        self.rewards = np.zeros((capacity, max_steps), dtype=np.float32)
        self.lengths = np.zeros(capacity, dtype=np.int32)
        self.generations = np.zeros(capacity, dtype=np.int64)
        self.tree = SumTree(capacity)
        self.rng = np.random.default_rng(seed)
        self.next_slot = 0
        self.size = 0
        self.max_priority = 1.0
        self.inserted_episodes = 0
        self.inserted_transitions = 0
        self.sampled_transitions = 0

    def storage(self) -> dict[str, np.ndarray]:
        """Every array the shard keeps, by name: what a snapshot holds."""
        return {
            "prompts": self.prompts,
            "actions": self.actions,
            "rewards": self.rewards,
            "lengths": self.lengths,
            "generations": self.generations,
            "tree": self.tree.nodes,
        }

    @property
    def nbytes(self) -> int:
        """Bytes held by the shard's storage; fixed at construction, whatever is inserted."""
        return sum(a.nbytes for a in self.storage().values())

    @property
    def num_transitions(self) -> int:
        return int(self.lengths[: self.size].sum())

    def add(self, batch: EpisodeBatch) -> int:
        """Store episodes FIFO, evicting the oldest; returns how many transitions were added."""
        n = len(batch.lengths)
        slots = (self.next_slot + np.arange(n)) % self.capacity
        T = batch.actions.shape[1]
        self.prompts[slots] = batch.prompts
        self.actions[slots] = 0
        self.actions[slots, :T] = batch.actions
        self.rewards[slots] = 0
        self.rewards[slots, :T] = batch.rewards
        self.lengths[slots] = batch.lengths
        self.inserted_episodes += n
        self.generations[slots] = self.inserted_episodes - n + np.arange(n) + 1
        priorities = batch.priorities if batch.priorities is not None else np.full(n, self.max_priority)
        self.tree.update(slots, self._scaled(priorities))
        self.next_slot = int((self.next_slot + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
        added = int(batch.lengths.sum())
        self.inserted_transitions += added
        return added

    def _scaled(self, priorities: np.ndarray) -> np.ndarray:
        p = np.abs(np.asarray(priorities, dtype=np.float64)) + self.priority_eps
        self.max_priority = max(self.max_priority, float(p.max()))
        return p**self.alpha

    def sample(self, batch_size: int, beta: float) -> SampledBatch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay shard")
        slots = self.tree.sample(self.rng, batch_size)
        probs = self.tree.get(slots) / self.tree.total
        lengths = self.lengths[slots]
        T = int(lengths.max())
        self.sampled_transitions += int(lengths.sum())
        return SampledBatch(
            prompts=self.prompts[slots],
            actions=self.actions[slots, :T],
            rewards=self.rewards[slots, :T],
            lengths=lengths,
            weights=importance_weights(probs, self.size, beta),
            slots=slots,
            generations=self.generations[slots],
        )

    def update_priorities(self, slots: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> int:
        """Set new priorities; entries whose slot was overwritten since sampling are dropped. Returns how many."""
        keep = self.generations[slots] == generations
        if keep.any():
            self.tree.update(slots[keep], self._scaled(priorities[keep]))
        return int(keep.sum())

    def to_bytes(self) -> bytes:
        """Everything the shard holds, the sampling RNG included: a restored shard continues exactly."""
        meta = {k: int(getattr(self, k)) for k in _COUNTERS}
        meta["max_priority"] = float(self.max_priority)
        meta["rng"] = rng_state(self.rng)
        return pack_arrays(self.storage(), meta)

    def load_bytes(self, data: bytes, source: str) -> None:
        """Restore `to_bytes` output; everything is checked before anything is changed."""
        what = f"replay snapshot {source}"
        try:
            arrays, meta = unpack_arrays(data, what)
        except CodecError as err:
            raise SnapshotError(str(err)) from None
        for name, mine in self.storage().items():
            theirs = arrays.get(name)
            if theirs is None or theirs.shape != mine.shape or theirs.dtype != mine.dtype:
                got = "missing" if theirs is None else f"{theirs.dtype} {theirs.shape}"
                raise SnapshotError(
                    f"{what} does not fit this shard: {name} is {got}, the shard needs {mine.dtype} {mine.shape} "
                    "(capacity, prompt length or episode length changed)"
                )
        try:
            counters = {k: int(meta[k]) for k in _COUNTERS}
            max_priority = float(meta["max_priority"])
        except (KeyError, TypeError, ValueError):
            raise SnapshotError(f"{what} lacks its counters") from None
        rng = np.random.default_rng()
        try:
            set_rng_state(rng, meta.get("rng"), what)
        except CodecError as err:
            raise SnapshotError(str(err)) from None
        for name, mine in self.storage().items():
            mine[:] = arrays[name]
        for k, v in counters.items():
            setattr(self, k, v)
        self.max_priority = max_priority
        self.rng = rng

    def save_snapshot(self, path: Path) -> None:
        write_sealed(Path(path), self.to_bytes())

    def load_snapshot(self, path: Path) -> None:
        try:
            data = read_sealed(Path(path), "replay snapshot")
        except CodecError as err:
            raise SnapshotError(str(err)) from None
        self.load_bytes(data, str(path))

    def stats(self) -> dict[str, float]:
        return {
            "size_episodes": self.size,
            "size_transitions": self.num_transitions,
            "inserted_transitions": self.inserted_transitions,
            "sampled_transitions": self.sampled_transitions,
        }


LEDGER_FIELDS = ("inserted", "lost", "starts", "snapshot_ns", "insert_ns", "lost_window_ns")


class Ledger:
    """Int64 counters in a small file beside a shard's snapshot, rewritten with one pwrite on every insert (no
    fsync: it must outlive the process, not the machine): transitions inserted so far, transitions lost to
    restarts, shard processes started over this directory, the wall-clock time (ns) of the last snapshot and of the
    last insert, and the longest stretch of inserts a restart has lost.

    When a shard comes back from its snapshot, inserted-per-ledger minus inserted-per-snapshot is exactly what the
    dead process held that the snapshot did not, and last insert minus last snapshot is how long it took to insert
    them: under one snapshot interval, since the first insert past an interval takes a new snapshot."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.values = dict.fromkeys(LEDGER_FIELDS, 0)
        raw = os.pread(self.fd, 8 * len(LEDGER_FIELDS), 0)
        if len(raw) == 8 * len(LEDGER_FIELDS):
            self.values = dict(zip(LEDGER_FIELDS, (int(x) for x in np.frombuffer(raw, dtype=np.int64))))

    def write(self, **changes: int) -> None:
        self.values.update(changes)
        os.pwrite(self.fd, np.array([self.values[k] for k in LEDGER_FIELDS], dtype=np.int64).tobytes(), 0)


class DurableShard:
    """A ReplayShard that snapshots itself to `directory` every `every_s` seconds (checked on insert) and, when
    built over an existing directory, restores the newest snapshot and counts what was lost since it."""

    def __init__(self, shard: ReplayShard, directory: Path, name: str, every_s: float):
        self.shard, self.every_s = shard, every_s
        self.path = Path(directory) / f"{name}.snap"
        self.ledger = Ledger(Path(directory) / f"{name}.ledger")
        self.restored = self.path.exists()
        if self.restored:
            shard.load_snapshot(self.path)
        before = self.ledger.values
        lost_now = max(0, before["inserted"] - shard.inserted_transitions)
        window_ns = before["insert_ns"] - before["snapshot_ns"] if lost_now else 0
        # What this process starts from is on disk already (the snapshot, or nothing at all): its own "snapshot".
        self.ledger.write(
            inserted=shard.inserted_transitions,
            lost=before["lost"] + lost_now,
            starts=before["starts"] + 1,
            snapshot_ns=time.time_ns(),
            lost_window_ns=max(before["lost_window_ns"], window_ns),
        )
        self.last_snapshot = time.monotonic()
        self.snapshots = 0

    @property
    def lost(self) -> int:
        return self.ledger.values["lost"]

    @property
    def starts(self) -> int:
        return self.ledger.values["starts"]

    @property
    def lost_window_s(self) -> float:
        """The longest time over which transitions lost to one restart had been inserted."""
        return self.ledger.values["lost_window_ns"] / 1e9

    def add(self, batch: EpisodeBatch) -> int:
        # Counted before the insert: a process killed in between overstates the loss, never understates it.
        self.ledger.write(inserted=self.shard.inserted_transitions + batch.num_transitions, insert_ns=time.time_ns())
        added = self.shard.add(batch)
        if self.every_s > 0 and time.monotonic() - self.last_snapshot >= self.every_s:
            self.snapshot()
        return added

    def snapshot(self) -> int:
        """Write the snapshot now; returns the transitions it covers."""
        self.shard.save_snapshot(self.path)
        self.ledger.write(snapshot_ns=time.time_ns())
        self.last_snapshot = time.monotonic()
        self.snapshots += 1
        return self.shard.inserted_transitions
