"""A prioritized replay shard that stores whole episodes, so the learner trains on whole sequences.

Plain Python (no ray, no torch): the serial runner calls it directly, distributed/hosts.py hosts it as an actor.
Priorities are per sequence (R2D2's 0.9 max + 0.1 mean of |TD|), sampling is proportional to p^alpha (Schaul et al.
2016), and the oldest episode is evicted first once the shard is full.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from replay.episodes import PROMPT_PAD, EpisodeBatch, SampledBatch
from replay.format import CodecError, pack_arrays, read_sealed, rng_state, set_rng_state, unpack_arrays, write_sealed
from replay.sum_tree import SumTree

_COUNTERS = (
    "next_slot",
    "size",
    "inserted_episodes",
    "inserted_transitions",
    "sampled_transitions",
    "stale_skipped",
)


class SnapshotError(ValueError):
    pass


def beta_at(beta0: float, updates: int, total_updates: int) -> float:
    """Importance-sampling exponent, annealed linearly from beta0 to 1 over the run (Schaul et al. 2016)."""
    frac = min(1.0, updates / total_updates)
    return beta0 + (1.0 - beta0) * frac


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
        self.prompts = np.full((capacity, prompt_len), PROMPT_PAD, dtype=np.int32)
        self.actions = np.zeros((capacity, max_steps), dtype=np.int32)
        self.rewards = np.zeros((capacity, max_steps), dtype=np.float32)
        self.lengths = np.zeros(capacity, dtype=np.int32)
        self.generations = np.zeros(capacity, dtype=np.int64)
        self.versions = np.full(capacity, -1, dtype=np.int64)  # the weights version that generated each episode
        self.inserted_at = np.zeros(capacity, dtype=np.float64)  # wall-clock seconds of each episode's insert
        self.tree = SumTree(capacity)
        self.frozen = False  # a snapshot holds the arrays: the next change copies them first (copy-on-write)
        self.rng = np.random.default_rng(seed)
        self.next_slot = 0
        self.size = 0
        self.max_priority = 1.0
        self.inserted_episodes = 0
        self.inserted_transitions = 0
        self.sampled_transitions = 0
        self.stale_skipped = 0  # episodes dropped at sampling time for being more than replay.max_lag versions old

    def storage(self) -> dict[str, np.ndarray]:
        """Every array the shard keeps, by name: what a snapshot holds."""
        return {
            "prompts": self.prompts,
            "actions": self.actions,
            "rewards": self.rewards,
            "lengths": self.lengths,
            "generations": self.generations,
            "versions": self.versions,
            "inserted_at": self.inserted_at,
            "tree": self.tree.nodes,
        }

    def _thaw(self) -> None:
        """Copy-on-write: before the first change after a snapshot took the arrays, give the shard its own copies."""
        if self.frozen:
            for name, a in self.storage().items():
                if name == "tree":
                    self.tree.nodes = a.copy()
                else:
                    setattr(self, name, a.copy())
            self.frozen = False

    @property
    def nbytes(self) -> int:
        """Bytes held by the shard's storage; fixed at construction, whatever is inserted."""
        return sum(a.nbytes for a in self.storage().values())

    @property
    def num_transitions(self) -> int:
        return int(self.lengths[: self.size].sum())

    def add(self, batch: EpisodeBatch) -> int:
        """Store episodes FIFO, evicting the oldest; returns how many transitions were added."""
        self._thaw()
        n = len(batch.lengths)
        slots = (self.next_slot + np.arange(n)) % self.capacity
        T = batch.actions.shape[1]
        self.prompts[slots] = PROMPT_PAD
        self.prompts[slots, : batch.prompts.shape[1]] = batch.prompts
        self.actions[slots] = 0
        self.actions[slots, :T] = batch.actions
        self.rewards[slots] = 0
        self.rewards[slots, :T] = batch.rewards
        self.lengths[slots] = batch.lengths
        self.inserted_episodes += n
        self.generations[slots] = self.inserted_episodes - n + np.arange(n) + 1
        self.versions[slots] = batch.versions if batch.versions is not None else -1
        self.inserted_at[slots] = time.time()
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

    @property
    def total_priority(self) -> float:
        return self.tree.total

    def sample(self, batch_size: int, beta: float, min_version: int | None = None) -> SampledBatch:
        """`batch_size` episodes drawn in proportion to priority^alpha. With `min_version`, episodes generated by
        older weights (replay.max_lag) get priority 0 (they never become younger) and the draw is repeated."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay shard")
        slots = self.tree.sample(self.rng, batch_size)
        stale = self.versions[slots] < min_version if min_version is not None else None
        while stale is not None and stale.any():  # each pass zeroes at least one episode: it ends
            self._thaw()
            old = np.unique(slots[stale])
            self.stale_skipped += len(old)
            self.tree.update(old, np.zeros(len(old)))
            if self.tree.total <= 0:
                raise ValueError(f"every episode in this replay shard is older than weights version {min_version}")
            slots = self.tree.sample(self.rng, batch_size)
            stale = self.versions[slots] < min_version
        total = self.tree.total
        probs = self.tree.get(slots) / total
        lengths = self.lengths[slots]
        T = int(lengths.max())
        n_sampled = int(lengths.sum())
        self.sampled_transitions += n_sampled
        return SampledBatch(
            prompts=self.prompts[slots],
            actions=self.actions[slots, :T],
            rewards=self.rewards[slots, :T],
            lengths=lengths,
            weights=importance_weights(probs, self.size, beta),
            slots=slots,
            generations=self.generations[slots],
            probs=probs,
            versions=self.versions[slots],
            ages=(time.time() - self.inserted_at[slots]).astype(np.float32),
        )

    def update_priorities(self, slots: np.ndarray, generations: np.ndarray, priorities: np.ndarray) -> int:
        """Set new priorities; entries whose slot was overwritten since sampling are dropped. Returns how many."""
        keep = self.generations[slots] == generations
        if keep.any():
            self._thaw()
            self.tree.update(slots[keep], self._scaled(priorities[keep]))
        return int(keep.sum())

    def freeze(self) -> tuple[dict[str, np.ndarray], dict]:
        """The shard's arrays (references, not copies) and counters as they are now, for a snapshot written
        elsewhere while inserts go on: the next change copies the arrays first (copy-on-write)."""
        meta = {k: int(getattr(self, k)) for k in _COUNTERS}
        meta["max_priority"] = float(self.max_priority)
        meta["rng"] = rng_state(self.rng)
        self.frozen = True
        return dict(self.storage()), meta

    def to_bytes(self) -> bytes:
        """Everything the shard holds, the sampling RNG included: a restored shard continues exactly."""
        return pack_arrays(*self.freeze())

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
            counters = {k: int(meta.get(k, 0) if k == "stale_skipped" else meta[k]) for k in _COUNTERS}
            max_priority = float(meta["max_priority"])
        except (KeyError, TypeError, ValueError):
            raise SnapshotError(f"{what} lacks its counters") from None
        rng = np.random.default_rng()
        try:
            set_rng_state(rng, meta.get("rng"), what)
        except CodecError as err:
            raise SnapshotError(str(err)) from None
        self._thaw()
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
            "total_priority": self.tree.total,
            "stale_skipped": self.stale_skipped,
        }
