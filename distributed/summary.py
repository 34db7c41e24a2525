"""summary.json, typed: what a finished run reports, in serial mode (tokenq/serial.py) and on Ray (driver.py).

Plain Python (no ray). The host counts its RunTotals (Ray runs add their DistributedTotals); the recorder
(tokenq/recorder.py) adds the clocks and evaluations, and writes the Summary: summary.json is its `to_dict()`, one flat
object whose keys README.md documents.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


def _flat(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass
class DistributedTotals:
    """What only a Ray run has: restarts and losses of its processes, placement, the learner's idle time and the
    replay's rate limiter."""

    shard_restarts: int
    learner_restarts: int
    # Transitions generated but not in replay: held by a shard process that died after its last snapshot, or in a
    # push to a shard as it died.
    replay_transitions_lost_in_shards: int
    replay_transitions_lost_in_pushes: int
    replay_lost_window_s: float  # how long the shard-held losses had taken to insert (about replay.snapshot_every_s)
    samples_lost: int
    learner_node: str | None
    shard_nodes: list
    actor_epsilons: list
    replay_transitions: int
    learner_idle_frac: float | None
    learner_wall_s: float
    learner_idle_s: float
    learner_ms_per_update: float
    # The replay's rate limiter: transitions sampled over inserted since min_size_to_sample, time held.
    samples_per_insert_measured: float | None
    limiter_transitions_inserted: int
    limiter_transitions_sampled: int
    insert_blocked_s: float
    sample_blocked_s: float
    inserts_blocked: int
    samples_blocked: int
    stale_episodes_skipped: int


@dataclass
class RunTotals:
    """What the host counted over the run (a resumed run's included)."""

    env_steps: int
    episodes: int
    learner_updates: int
    transitions_trained: int
    num_actors: int
    num_shards: int
    weights_version: int  # the newest weights published to the actors
    final_weights_version: int  # the final checkpoint's and evaluation's (with stop_at_target: the reaching ones)
    actor_restarts: int
    replay_transitions_lost: int
    nonfinite_updates: int
    rollbacks: int
    resumed_from_updates: int | None
    nodes: list
    num_parameters: int
    trainable_parameters: int
    weights_bytes_per_publish: int
    final_losses: dict
    # Staleness, in weights versions (learner updates) at sampling time, over the run's sampled episodes.
    episode_lag_mean: float
    episode_lag_max: int
    sample_age_s: float
    distributed: DistributedTotals | None = None  # a Ray run's; its fields sit beside these in summary.json


@dataclass
class Summary:
    mode: str  # serial, local or cluster
    config: str  # the config's name
    stopped_by: str | None  # a signal's name when SIGINT or SIGTERM ended the run early
    task: str
    totals: RunTotals
    wall_time_s: float
    train_time_s: float  # evaluation and checkpoints excluded
    time_to_target_s: float | None
    updates_to_target: int | None
    env_steps_per_s: float
    transitions_trained_per_s: float
    timers: dict  # seconds per named phase
    eval: dict  # the final held-out evaluation
    eval_history: list

    def to_dict(self) -> dict:
        """summary.json's layout: one flat object."""
        out = _flat(self)
        totals = _flat(out.pop("totals"))
        extra = totals.pop("distributed")
        return {**out, **totals, **(_flat(extra) if extra is not None else {})}
