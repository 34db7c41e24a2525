"""Prioritized sampling over S shards as over one table (Schaul et al. 2016, Ape-X's global replay).

Pure: imports neither torch nor ray. A batch of B episodes is split over the shards by one multinomial draw with
probabilities T_i / sum_j T_j (T_i: shard i's total priority^alpha); shard i then draws its k_i episodes in
proportion to their priority^alpha. An episode's chance per draw is therefore (T_i / T) (p / T_i) = p / T: exactly
the single-table distribution. Importance weights use that global probability and the global size.
"""

from __future__ import annotations

import numpy as np

from replay.episodes import SampledBatch
from replay.shard import importance_weights


def split_batch(rng: np.random.Generator, totals: np.ndarray, batch_size: int) -> np.ndarray:
    """(S,) episodes to draw from each shard: Multinomial(batch_size, totals / sum(totals))."""
    totals = np.asarray(totals, dtype=np.float64)
    if totals.sum() <= 0:
        raise ValueError("no replay shard holds an episode to sample")
    return rng.multinomial(batch_size, totals / totals.sum())


def merge_parts(
    parts: list[tuple[int, SampledBatch]], shares: np.ndarray, global_size: int, beta: float
) -> tuple[SampledBatch, np.ndarray]:
    """One batch from the shards' parts: (shard index, its SampledBatch). `shares[i]` is the probability the split
    gave shard i; returns the batch, its importance weights recomputed from the global probabilities, and the (B,)
    shard index of every episode (for the priority write-back)."""
    T = max(p.actions.shape[1] for _, p in parts)
    pad = lambda a: np.pad(a, ((0, 0), (0, T - a.shape[1])))  # noqa: E731  (PAD = 0 actions, 0 rewards)
    probs = np.concatenate([shares[i] * p.probs for i, p in parts])
    batch = SampledBatch(
        prompts=np.concatenate([p.prompts for _, p in parts]),
        actions=np.concatenate([pad(p.actions) for _, p in parts]),
        rewards=np.concatenate([pad(p.rewards) for _, p in parts]),
        lengths=np.concatenate([p.lengths for _, p in parts]),
        weights=importance_weights(probs, global_size, beta),
        slots=np.concatenate([p.slots for _, p in parts]),
        generations=np.concatenate([p.generations for _, p in parts]),
        probs=probs,
        versions=np.concatenate([p.versions for _, p in parts]),
        ages=np.concatenate([p.ages for _, p in parts]),
    )
    return batch, np.concatenate([np.full(len(p.lengths), i) for i, p in parts])


class Staleness:
    """Weights versions between the learner and each sampled episode's generator (at sampling time), and the
    episode's seconds in replay: over the run, and since the last `window()`."""

    def __init__(self) -> None:
        self.total = [0.0, 0, 0.0, 0]  # lag sum, lag max, age sum, episodes
        self.recent = [0.0, 0, 0.0, 0]

    def sampled(self, updates: int, batch: SampledBatch) -> None:
        lag = updates - batch.versions
        for acc in (self.total, self.recent):
            acc[0] += float(lag.sum())
            acc[1] = max(acc[1], int(lag.max()))
            acc[2] += float(batch.ages.sum())
            acc[3] += len(lag)

    def window(self) -> dict:
        """Since the last call (None before any sample): episode_lag_mean, episode_lag_max, sample_age_s."""
        r, self.recent = self.recent, [0.0, 0, 0.0, 0]
        if not r[3]:
            return {"episode_lag_mean": None, "episode_lag_max": None, "sample_age_s": None}
        return {"episode_lag_mean": r[0] / r[3], "episode_lag_max": r[1], "sample_age_s": r[2] / r[3]}

    def summary(self) -> dict:
        """Over the run."""
        t, n = self.total, max(self.total[3], 1)
        return {"episode_lag_mean": round(t[0] / n, 3), "episode_lag_max": t[1], "sample_age_s": round(t[2] / n, 3)}
