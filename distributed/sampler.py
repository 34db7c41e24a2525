"""The learner's side of replay: prioritized batches over all shards, prefetched, and the priority write-back.

Each batch is split over the shards in proportion to their total priority (replay/sampling.py); `prefetch` batches
are in flight at once, so the learner never waits on a single round trip. A shard's reply carries its new total
priority and size, which the next splits use. Batches are requested within the headroom the replay's rate limiter
granted; when it is spent, the sampler reports what it sampled and waits for a new grant (held while the learner is
ahead). That wait, and any wait for replies or a first episode, is the learner's idle time.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayError

from replay.episodes import SAMPLE_EXTRAS, SAMPLE_SCHEMA, SampledBatch
from replay.format import CodecError, unpack_arrays
from replay.sampling import merge_parts, split_batch

REFRESH_S = 1.0


@dataclass
class Pending:
    shares: np.ndarray  # (S,) the split's probabilities
    refs: list  # [(shard index, sample ref)]


class ShardSampler:
    def __init__(self, shards: list, limiter, batch_size: int, prefetch: int, seed: int):
        self.shards, self.limiter, self.batch_size, self.prefetch = shards, limiter, batch_size, prefetch
        self.credit = 0.0  # transitions the limiter's last grant still allows (estimated at request time)
        self.consumed = 0  # transitions sampled since the last report to the limiter
        self.permit = None  # a pending grant
        self.mean_length = 1.0  # of sampled episodes: the estimate a request is charged
        self.rng = np.random.default_rng(seed)
        self.totals = np.zeros(len(shards))
        self.sizes = np.zeros(len(shards), dtype=np.int64)
        self.in_flight: deque[Pending] = deque()
        self.lost_samples = 0  # sample replies lost to a dying shard
        self.idle_s = 0.0  # blocked on replay: no episode yet, or the rate limiter
        self.next_refresh = 0.0

    def _refresh(self) -> None:
        """Every shard's total priority and size, every REFRESH_S: a shard the splits gave nothing (empty at the
        start, or restarting) gets its share back."""
        self.next_refresh = time.monotonic() + REFRESH_S
        for i, sh in enumerate(self.shards):
            try:
                st = ray.get(sh.stats.remote(), timeout=5)
            except (RayError, GetTimeoutError):
                continue
            self.totals[i], self.sizes[i] = st["total_priority"], st["size_episodes"]

    def _grant(self) -> None:
        """Ask the limiter for a new grant once the last is spent; take it when it has come."""
        if self.credit <= 0 and self.permit is None:
            self.permit, self.consumed = self.limiter.sample.remote(self.consumed), 0
        if self.permit is not None and ray.wait([self.permit], timeout=0)[0]:
            try:
                self.credit = float(ray.get(self.permit))
            except RayError:  # the limiter is restarting: asked again
                self.credit = 0.0
            self.permit = None

    def _request(self, beta: float, min_version: int | None) -> None:
        self._grant()
        while len(self.in_flight) < self.prefetch and self.totals.sum() > 0 and self.credit > 0:
            self.credit -= self.batch_size * self.mean_length
            counts = split_batch(self.rng, self.totals, self.batch_size)
            shares = self.totals / self.totals.sum()
            refs = [(i, self.shards[i].sample.remote(int(k), beta, min_version)) for i, k in enumerate(counts) if k]
            self.in_flight.append(Pending(shares, refs))

    def next(self, beta: float, min_version: int | None, stop) -> tuple[SampledBatch, np.ndarray] | None:
        """The next batch and each episode's shard index; None when `stop()` turned true while waiting, or a reply
        was lost (a shard died; Ray restarts it)."""
        t0 = time.perf_counter()
        if time.monotonic() >= self.next_refresh:
            self._refresh()
        try:
            while True:
                self._request(beta, min_version)
                if self.in_flight:
                    break
                if stop():
                    return None
                if self.permit is not None:
                    ray.wait([self.permit], timeout=0.2)  # held by the limiter: the learner is ahead
                else:
                    time.sleep(0.05)
                    self._refresh()
            pending = self.in_flight.popleft()
            refs = [r for _, r in pending.refs]
            while True:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.2)
                if len(ready) == len(refs) or stop():
                    break
            if len(ready) < len(refs):
                return None
            parts = []
            for i, ref in pending.refs:
                part = self._reply(i, ref)
                if part is not None:
                    parts.append((i, part))
        finally:
            self.idle_s += time.perf_counter() - t0
        if not parts:
            return None
        batch, shard_index = merge_parts(parts, pending.shares, int(self.sizes.sum()), beta)
        self.consumed += int(batch.lengths.sum())
        self.mean_length = float(batch.lengths.mean())
        return batch, shard_index

    def _reply(self, i: int, ref) -> SampledBatch | None:
        try:
            data = ray.get(ref)
        except RayError:  # the shard died with the request in flight
            self.lost_samples += 1
            return None
        if data is None:  # the shard holds nothing it may hand out (empty, or every episode too old)
            self.totals[i] = 0.0
            return None
        try:
            arrays, meta = unpack_arrays(data, "a sampled batch", SAMPLE_SCHEMA)
        except CodecError:
            self.lost_samples += 1
            return None
        self.totals[i], self.sizes[i] = float(meta["total"]), int(meta["size"])
        return SampledBatch(**{k: arrays[k] for k in SAMPLE_SCHEMA}, **{k: arrays[k] for k in SAMPLE_EXTRAS})

    def write_back(self, shard_index: np.ndarray, batch: SampledBatch, priorities: np.ndarray) -> None:
        """New priorities to each shard, fire and forget."""
        for i in np.unique(shard_index):
            m = shard_index == i
            self.shards[i].update_priorities.remote(batch.slots[m], batch.generations[m], priorities[m])
