"""The learner loop that both hosts run: serial mode (tokenq/serial.py) in its one process, and the Ray learner host
(distributed/learner_host.py) free-running beside the actors.

One step: sample a prioritized batch, update (Double DQN), write the new priorities back, publish the weights every
`publish_every` updates and checkpoint every `checkpoint_every`. Plain Python (no ray): what differs between the hosts
arrives as a BatchSource (the in-process replay behind its rate limiter, or the prefetching sampler over all shards)
and as callbacks (how to publish, how to checkpoint, what to do after an update, where the TD losses go).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from learner.checkpoint import Checkpoint
from learner.learner import Learner
from replay.episodes import SampledBatch
from replay.rate_limiter import RateLimiter
from replay.sampling import Staleness
from replay.shard import ReplayShard, beta_at


class BatchSource(Protocol):
    """Where the loop's batches come from and their priorities go back to."""

    def next(self, beta: float, min_version: int | None, stop: Callable[[], bool]) -> tuple[SampledBatch, Any] | None:
        """A batch and where it came from (handed back to write_back); None when there is none to give now (the
        rate limiter holds the learner, or `stop()` turned true)."""

    def write_back(self, where: Any, batch: SampledBatch, priorities) -> None:
        """The batch's new priorities (B,), to the replay that holds its episodes."""


@dataclass(frozen=True)
class LoopSettings:
    """The run config's values of these names (their defaults and documentation live in the config); `of` reads
    them."""

    batch_size: int  # episodes per update (learner.batch_size)
    total_updates: int  # the loop ends there (train.total_updates)
    beta: float  # importance-sampling exponent at the start, annealed to 1 (replay.beta)
    max_lag: int  # skip episodes more than this many versions old; 0 = off (replay.max_lag)
    publish_every: int  # updates between weight publications (train.publish_every)
    checkpoint_every: int  # updates between checkpoints (train.checkpoint_every); 0 = none
    # Sample (and stage to the device) the next batch before updating on the current one, so that its copy overlaps
    # the update. The Ray host does; serial mode does not: there the next draw must see this update's priorities.
    lookahead: bool

    @classmethod
    def of(cls, cfg, lookahead: bool) -> LoopSettings:
        """From a run config (its learner, train and replay sections)."""
        t, r = cfg.train, cfg.replay
        return cls(
            batch_size=cfg.learner.batch_size,
            total_updates=t.total_updates,
            beta=r.beta,
            max_lag=r.max_lag,
            publish_every=t.publish_every,
            checkpoint_every=t.checkpoint_every,
            lookahead=lookahead,
        )


def _no_losses(losses: list[tuple[int, float]]) -> None:
    pass


@dataclass
class LearnerLoop:
    """The loop over one Learner. `publish(version)` hands the weights to the actors, `checkpoint()` writes one
    (flush(), then checkpoint_state()), `after_update(updates)` runs after each update's publication and before its
    checkpoint (serial mode evaluates there), `losses` receives every update's (update, TD loss)."""

    learner: Learner
    source: BatchSource
    settings: LoopSettings
    publish: Callable[[int], None]
    checkpoint: Callable[[], None] | None = None
    after_update: Callable[[int], None] | None = None
    losses: Callable[[list[tuple[int, float]]], None] = _no_losses
    timer: Any = None  # an object with .phase(name), a context manager timing the named phase (tokenq's PhaseTimer)
    metrics: dict = field(default_factory=dict)  # the learner's latest metrics report
    staleness: Staleness = field(default_factory=Staleness)  # of the sampled episodes, at sampling time

    def _phase(self, name: str):
        return self.timer.phase(name) if self.timer is not None else nullcontext()

    def run(self, stop: Callable[[], bool]) -> None:
        """Update until `stop()`, settings.total_updates, or the source has no batch to give now."""
        s, staged = self.settings, None
        while self.learner.updates < s.total_updates and not stop():
            current = staged or self.sample(stop)
            if current is None:
                return
            staged = self.sample(stop) if s.lookahead else None
            self.step(*current)

    def sample(self, stop: Callable[[], bool]) -> tuple | None:
        """(staged batch, sampled batch, where it came from), or None (see BatchSource.next)."""
        s, u = self.settings, self.learner.updates
        with self._phase("sample"):
            got = self.source.next(beta_at(s.beta, u, s.total_updates), u - s.max_lag if s.max_lag > 0 else None, stop)
            if got is None:
                return None
            batch, where = got
            self.staleness.sampled(u, batch)
            return self.learner.stage(batch), batch, where

    def step(self, staged, batch: SampledBatch, where) -> None:
        """One update on a staged batch, then its priorities, publication, after_update and checkpoint when due."""
        s = self.settings
        with self._phase("learn"):
            metrics, priorities = self.learner.update(staged)
        self._report(metrics)  # a non-finite update's loss is reported too
        if priorities is None:  # a non-finite update was skipped (maybe rolled back): the replay keeps the old ones
            return
        with self._phase("update_priorities"):
            self.source.write_back(where, batch, priorities)
        u = self.learner.updates
        if u % s.publish_every == 0:
            with self._phase("publish_weights"):
                self.publish(u)
        if self.after_update is not None:
            self.after_update(u)
        if self.checkpoint is not None and s.checkpoint_every and u % s.checkpoint_every == 0:
            self.checkpoint()

    def _report(self, metrics: dict | None) -> None:
        if metrics is None:
            return
        self.losses(metrics.get("td_loss_per_update", []))
        self.metrics = {k: v for k, v in metrics.items() if k != "td_loss_per_update"}

    def flush(self) -> None:
        """Report the metrics of the updates not yet reported (before a checkpoint, and at the end)."""
        self._report(self.learner.flush_metrics())

    def checkpoint_state(self, config: dict, **host: Any) -> Checkpoint:
        """The learner's state as a Checkpoint, with the host's own parts (`host`: Checkpoint's other fields); the
        state checkpointed is also the one a rollback returns to. Hosts call flush() before."""
        return Checkpoint(learner=self.learner.mark_good(), config=config, torch_rng=torch.get_rng_state(), **host)


class ReplaySource:
    """Serial mode's BatchSource: one in-process replay shard behind the replay's rate limiter (no batch while the
    limiter holds the learner: then the actor inserts)."""

    def __init__(self, replay: ReplayShard, limiter: RateLimiter, batch_size: int):
        self.replay, self.limiter, self.batch_size = replay, limiter, batch_size

    def next(self, beta: float, min_version: int | None, stop: Callable[[], bool]) -> tuple[SampledBatch, None] | None:
        if not self.limiter.can_sample():
            return None
        batch = self.replay.sample(self.batch_size, beta, min_version)
        self.limiter.sampled_now(int(batch.lengths.sum()))
        return batch, None

    def write_back(self, where: None, batch: SampledBatch, priorities) -> None:
        self.replay.update_priorities(batch.slots, batch.generations, priorities)
