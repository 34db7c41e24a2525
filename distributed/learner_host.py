"""The learner's Ray host: the learner loop (learner/loop.py, the one serial mode runs too), free-running over
prioritized batches from all replay shards.

It samples with prefetch (distributed/sampler.py), updates, writes priorities back without waiting, publishes its
weights to the store every `publish_every` updates and checkpoints itself every `checkpoint_every` updates. The driver
starts the loop (`run`), reads `progress()`, sends its counters for the checkpoints (`set_driver_state`) and calls
`stop()`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray
import torch

from distributed.codec import weights_arrays, weights_nbytes, weights_tensors
from distributed.hosts import lookup, node_id
from distributed.sampler import ShardSampler
from learner.learner import Learner
from learner.loop import LearnerLoop, LoopSettings


@dataclass(frozen=True)
class LearnerSettings:
    """What the learner host needs beyond its learner: the loop's settings, and its own (the config's values:
    distributed/launch.py's learner_settings)."""

    loop: LoopSettings
    prefetch: int  # batches in flight (replay.prefetch)
    torch_threads: int  # 0 keeps torch's default (train.torch_threads)
    seed: int
    checkpoint_dir: str  # "" = no checkpoints
    keep_checkpoints: int
    config: dict  # the run's config, stored in every checkpoint


class ShardSource:
    """The Ray host's BatchSource: the prefetching sampler over all shards; a reply lost to a dying shard is
    skipped (Ray restarts the shard), so `next` returns None only once stopped."""

    def __init__(self) -> None:
        self.sampler: ShardSampler | None = None  # made when the loop first runs (the shards exist by then)

    def next(self, beta: float, min_version: int | None, stop: Callable[[], bool]):
        while not stop():
            got = self.sampler.next(beta, min_version, stop)
            if got is not None:
                return got
        return None

    def write_back(self, shard_index, batch, priorities) -> None:
        self.sampler.write_back(shard_index, batch, priorities)


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
        self.settings, self.names = settings, names
        self.store = ray.get_actor(names["store"], namespace=names["namespace"])
        self.stopping = False
        self.loop_done = threading.Event()
        self.loop_done.set()
        self.wall_s, self.run_t0 = 0.0, None  # the time inside the loop; when the running loop's clock started
        self.source = ShardSource()
        self.loop = LearnerLoop(
            self.learner,
            self.source,
            settings.loop,
            publish=lambda _: self.publish(),
            checkpoint=self.checkpoint if settings.checkpoint_dir else None,
        )
        self.driver_counters: dict = {}  # the driver's counters and its recorder's state, stored in every checkpoint
        self.driver_recorder: dict | None = None
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

    def set_driver_state(self, counters: dict, recorder: dict | None) -> None:
        self.driver_counters, self.driver_recorder = counters, recorder

    # --- the loop ------------------------------------------------------------------------------------------------

    def run(self) -> dict:
        """Train until stop() or the loop's total_updates; returns the final progress."""
        s = self.settings
        self.loop_done.clear()
        try:
            if self.source.sampler is None:
                _, shards = lookup(self.names)
                limiter = ray.get_actor(self.names["limiter"], namespace=self.names["namespace"])
                self.source.sampler = ShardSampler(shards, limiter, s.loop.batch_size, s.prefetch, s.seed + 17)
            self.run_t0 = time.perf_counter() - self.wall_s  # a second run() continues the clock
            self.loop.run(self._stopped)
        finally:
            self.wall_s, self.run_t0 = self._wall_s(), None
            self.loop_done.set()
        return self.progress()

    def _wall_s(self) -> float:
        t0 = self.run_t0
        return self.wall_s if t0 is None else time.perf_counter() - t0

    def _stopped(self) -> bool:
        return self.stopping

    def stop(self) -> None:
        self.stopping = True

    def checkpoint(self) -> str:
        """Write a checkpoint now (the loop's own, or the driver's final one once the loop stopped): the learner's
        state, the driver's latest counters, the config and torch's RNG, atomically."""
        s = self.settings
        self.loop.flush()
        ckpt = self.loop.checkpoint_state(s.config, counters=self.driver_counters, recorder=self.driver_recorder)
        return str(ckpt.save(Path(s.checkpoint_dir), s.keep_checkpoints))

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
        staleness, sampler = self.loop.staleness, self.source.sampler
        run = staleness.summary()
        return {
            "updates": self.learner.updates,
            "transitions_trained": self.learner.transitions_trained,
            "published_version": self.published,
            "metrics": self.loop.metrics,
            "nonfinite_updates": self.learner.nonfinite_updates,
            "rollbacks": self.learner.rollbacks,
            "lost_samples": sampler.lost_samples if sampler else 0,
            "wall_s": self._wall_s(),
            "idle_s": sampler.idle_s if sampler else 0.0,  # blocked on replay or the rate limiter
            **staleness.window(),
            "run_lag_mean": run["episode_lag_mean"],
            "run_lag_max": run["episode_lag_max"],
            "run_age_s": run["sample_age_s"],
        }

    def where(self) -> dict:
        return {"node_id": node_id(), "pid": os.getpid(), "device": str(self.learner.device)}
