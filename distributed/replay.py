"""A prioritized replay shard that stores whole episodes, so the learner trains on whole sequences.

Plain Python (no ray): the serial driver calls it directly, distributed/ray_actors.py hosts it as an actor.
Priorities are per sequence (R2D2's 0.9 max + 0.1 mean of |TD|), sampling is proportional to p^alpha (Schaul et al.
2016), and the oldest episode is evicted first once the shard is full.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actors.rollout import EpisodeBatch
from distributed.sum_tree import SumTree


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

    @property
    def nbytes(self) -> int:
        """Bytes held by the shard's storage; fixed at construction, whatever is inserted."""
        arrays = (self.prompts, self.actions, self.rewards, self.lengths, self.generations, self.tree.nodes)
        return sum(a.nbytes for a in arrays)

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

    def stats(self) -> dict[str, float]:
        return {
            "size_episodes": self.size,
            "size_transitions": self.num_transitions,
            "inserted_transitions": self.inserted_transitions,
            "sampled_transitions": self.sampled_transitions,
        }
