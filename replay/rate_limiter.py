"""Reverb's SampleToInsertRatio: the rate limiter is a property of the replay table, not of a driver.

Pure: imports neither torch nor ray. One limiter serves a table of S shards (distributed/hosts.py hosts it as one
actor beside them): an actor asks it before every insert, the learner before it samples, and the host holds each call
until the answer is yes, counting how long each side was held.

Counted in transitions: `samples_per_insert` transitions are sampled per transition inserted once the table holds
`min_size_to_sample` episodes (the insert that brings it there included: its episodes are the first the learner
samples). Sampling runs at most `error_buffer` (sampled) transitions ahead of that ratio, and inserting at most
`error_buffer` ahead of it, so the gap between actors and learner is fixed by the buffer, not by the number of
actors. Neither side can block the other for good: an insert is allowed whenever sampling is refused, and when
inserting is refused, diff >= buffer, so sampling is allowed.

Serial mode (tokenq/serial.py) runs the same limiter in its one process with an error buffer of 0: the actor inserts
exactly when the learner may not sample, so the two take turns at the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RateLimiter:
    samples_per_insert: float
    min_size_to_sample: int  # episodes the table holds before the first sample
    error_buffer: float  # transitions (in sampled-transition units) either side may run ahead
    episodes: int = 0  # episodes inserted (the table's size until it is full)
    inserted: int = 0  # transitions inserted once the table held min_size_to_sample episodes
    sampled: int = 0  # transitions sampled
    started: bool = False
    insert_blocked_s: float = 0.0
    sample_blocked_s: float = 0.0
    inserts_blocked: int = 0  # insert calls that had to wait
    samples_blocked: int = 0

    @property
    def diff(self) -> float:
        """Transitions the learner may still sample at the ratio: positive when actors are ahead."""
        return self.samples_per_insert * self.inserted - self.sampled

    def can_insert(self) -> bool:
        return not self.started or self.diff < self.error_buffer or not self.can_sample()

    def can_sample(self) -> bool:
        return self.started and self.diff > -self.error_buffer

    def headroom(self) -> float:
        """Transitions the learner may sample now before it runs the full buffer ahead."""
        return self.diff + self.error_buffer if self.started else 0.0

    def inserted_now(self, transitions: int, episodes: int) -> None:
        """Count an insert; the ratio's clock starts with the insert after which the table first holds
        min_size_to_sample episodes."""
        self.episodes += episodes
        self.started = self.started or self.episodes >= self.min_size_to_sample
        if self.started:
            self.inserted += transitions

    def sampled_now(self, transitions: int) -> None:
        self.sampled += transitions

    def blocked(self, side: str, seconds: float) -> None:
        if side == "insert":
            self.insert_blocked_s += seconds
            self.inserts_blocked += 1
        else:
            self.sample_blocked_s += seconds
            self.samples_blocked += 1

    def load_state(self, state: dict) -> None:
        """Continue the counts of `state()` (a resumed serial run)."""
        for name, value in state.items():
            setattr(self, name, type(getattr(self, name))(value))

    def state(self) -> dict:
        return {
            "episodes": self.episodes,
            "inserted": self.inserted,
            "sampled": self.sampled,
            "started": self.started,
            "insert_blocked_s": self.insert_blocked_s,
            "sample_blocked_s": self.sample_blocked_s,
            "inserts_blocked": self.inserts_blocked,
            "samples_blocked": self.samples_blocked,
        }
