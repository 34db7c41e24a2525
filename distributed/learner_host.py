"""The learner's Ray host: a free-running Double-DQN loop over prioritized batches from all replay shards.

It samples with prefetch (distributed/sampler.py), updates, writes priorities back without waiting, publishes its
weights every `publish_every` updates and checkpoints itself every `checkpoint_every` updates. The driver starts the
loop (`run`), reads `progress()`, sends its counters for the checkpoints (`set_driver_state`) and calls `stop()`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ray
import torch

from distributed.codec import weights_arrays, weights_nbytes, weights_tensors
from distributed.hosts import lookup, node_id
from distributed.sampler import ShardSampler
from learner.checkpoint import save_checkpoint
from learner.learner import Learner
from replay.sampling import Staleness
from replay.shard import beta_at


@dataclass(frozen=True)
class LearnerSettings:
    """What the learner host needs beyond its learner."""

    batch_size: int = 32  # episodes per update (learner.batch_size)
    prefetch: int = 2  # batches in flight (replay.prefetch)
    publish_every: int = 10  # updates between weight publications (train.publish_every)
    torch_threads: int = 0  # 0 keeps torch's default (train.torch_threads)
    total_updates: int = 1500  # the loop ends there (train.total_updates)
    beta: float = 0.4  # importance-sampling exponent at the start, annealed to 1 (replay.beta)
    max_lag: int = 0  # skip episodes more than this many versions old; 0 = off (replay.max_lag)
    seed: int = 0
    checkpoint_dir: str = ""  # "" = no checkpoints
    checkpoint_every: int = 500  # updates between checkpoints (train.checkpoint_every)
    keep_checkpoints: int = 3
    config: dict = field(default_factory=dict)  # the run's config, stored in every checkpoint


@dataclass
class LearnerStats:
    """What the free-running learner counts; `progress()` hands it to the driver."""

    wall_s: float = 0.0  # inside the loop
    idle_s: float = 0.0  # of which blocked on replay (no episode yet, or the rate limiter)
    staleness: Staleness = field(default_factory=Staleness)  # of the sampled episodes


@ray.remote(max_concurrency=4)
class LearnerActor:
    """Runs free: samples prioritized batches from all shards with prefetch, updates, writes priorities back
    without waiting, publishes its weights to the store every `publish_every` updates and checkpoints itself every
    `checkpoint_every` updates. The driver starts it (`run`), reads `progress()`, and calls `stop()`."""

    def __init__(self, make_learner: Callable[[], Learner], settings: LearnerSettings, names: dict):
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self.learner = make_learner()
        self.learner.mark_good()
        # The store exists before the learner; the shards are looked up when the loop starts.
        self.settings, self.names, self.sampler = settings, names, None
        self.store = ray.get_actor(names["store"], namespace=names["namespace"])
        self.stopping = False
        self.loop_done = threading.Event()
        self.loop_done.set()
        self.stats = LearnerStats()
        self.metrics: dict[str, float] = {}
        self.driver_state: dict = {}  # the driver's counters, stored in every checkpoint
        self.publish()

    def _publish_arrays(self, restore: bool = False) -> None:
        # The arrays share the CPU tensors' memory; Ray copies them into the object store as the call is made. With
        # LoRA they are the adapters and heads alone: actors hold the base model already.
        version = self.learner.updates  # read once: the loop may move on meanwhile (publish() comes from the driver)
        arrays = weights_arrays(self.learner.online.state_dict())
        self.publish_bytes = weights_nbytes(arrays)
        call = self.store.restore if restore else self.store.publish
        call.remote(version, arrays, time.time())
        self.published = version

    def publish(self) -> int:
        self._publish_arrays()
        return self.published

    def weights_info(self) -> dict:
        """What one publication sends, and how many parameters train."""
        return {
            "trainable_parameters": self.learner.trainable_parameters(),
            "weights_bytes_per_publish": self.publish_bytes,
        }

    def load_state(self, state: dict | None) -> int:
        """Continue from a checkpoint's learner state (a resumed run, or this learner replacing one that died;
        None: from the start). The store is rolled back to it, so actors act with it at once."""
        if state is not None:
            self.learner.load_state_dict(state)
        self.learner.mark_good()
        self._publish_arrays(restore=True)
        return self.published

    def set_driver_state(self, state: dict) -> None:
        self.driver_state = state

    # --- the loop ------------------------------------------------------------------------------------------------

    def run(self) -> dict:
        """Train until stop() or settings.total_updates; returns the final progress."""
        s = self.settings
        self.loop_done.clear()
        try:
            if self.sampler is None:
                _, shards = lookup(self.names)
                limiter = ray.get_actor(self.names["limiter"], namespace=self.names["namespace"])
                self.sampler = ShardSampler(shards, limiter, s.batch_size, s.prefetch, s.seed + 17)
            t0 = time.perf_counter() - self.stats.wall_s  # a second run() continues the clocks
            nxt = self._sample()
            while nxt is not None and self.learner.updates < s.total_updates:
                cur, nxt = nxt, self._sample()  # staged now: the next batch's copy to the device overlaps this update
                self._train(*cur)
                self.stats.wall_s = time.perf_counter() - t0
        finally:
            self.loop_done.set()
        return self.progress()

    def _stop(self) -> bool:
        return self.stopping

    def _sample(self):
        """The next (staged batch, sampled batch, shard index), or None when stopped; a lost reply is skipped."""
        s = self.settings
        while not self.stopping:
            beta = beta_at(s.beta, self.learner.updates, s.total_updates)
            min_version = self.learner.updates - s.max_lag if s.max_lag > 0 else None
            got = self.sampler.next(beta, min_version, self._stop)
            self.stats.idle_s = self.sampler.idle_s
            if got is not None:
                batch, shard_index = got
                self.stats.staleness.sampled(self.learner.updates, batch)
                return self.learner.stage(batch), batch, shard_index
        return None

    def _train(self, staged, batch, shard_index) -> None:
        s = self.settings
        metrics, priorities = self.learner.update(staged)
        if metrics is not None:
            self.metrics = {k: v for k, v in metrics.items() if k != "td_loss_per_update"}
        if priorities is None:  # non-finite: skipped by the learner; its loss is reported, not dropped
            return
        self.sampler.write_back(shard_index, batch, priorities)
        if self.learner.updates % s.publish_every == 0:
            self.publish()
        if s.checkpoint_dir and self.learner.updates % s.checkpoint_every == 0:
            self.checkpoint()

    def stop(self) -> None:
        self.stopping = True

    def checkpoint(self) -> str:
        """Write a checkpoint now (the loop's own, or the driver's final one once the loop stopped): the learner's
        state, the driver's latest counters, the config and torch's RNG, atomically."""
        s = self.settings
        metrics = self.learner.flush_metrics()
        if metrics is not None:
            self.metrics = {k: v for k, v in metrics.items() if k != "td_loss_per_update"}
        state = {
            "learner": self.learner.mark_good(),
            "config": s.config,
            "counters": self.driver_state,
            "torch_rng": torch.get_rng_state(),
        }
        return str(save_checkpoint(Path(s.checkpoint_dir), self.learner.updates, state, s.keep_checkpoints))

    def finish(self, rewind: tuple[int, dict] | None = None) -> dict:
        """After the loop stopped: publish and checkpoint the final state; returns its weights as arrays and the
        version they were published at. `rewind` = (version, weights as arrays) of an earlier publication makes
        those the final online and target networks: a run stopped at its target ends on the weights that reached
        it, as in serial mode, not on the updates the learner made while they were being evaluated."""
        self.stopping = True
        self.loop_done.wait()
        version = self.learner.updates
        if rewind is not None:
            version, arrays = rewind
            self.learner.set_weights(weights_tensors(arrays))
        self.publish()
        path = self.checkpoint() if self.settings.checkpoint_dir else None
        return {"checkpoint": path, "online": weights_arrays(self.learner.get_weights()), "weights_version": version}

    def progress(self) -> dict:
        st = self.stats
        run = st.staleness.summary()
        return {
            "updates": self.learner.updates,
            "transitions_trained": self.learner.transitions_trained,
            "published_version": self.published,
            "metrics": self.metrics,
            "nonfinite_updates": self.learner.nonfinite_updates,
            "rollbacks": self.learner.rollbacks,
            "lost_samples": self.sampler.lost_samples if self.sampler else 0,
            "wall_s": st.wall_s,
            "idle_s": st.idle_s,
            **st.staleness.window(),
            "run_lag_mean": run["episode_lag_mean"],
            "run_lag_max": run["episode_lag_max"],
            "run_age_s": run["sample_age_s"],
        }

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid(), "device": str(self.learner.device)}
