"""Reverb's SampleToInsertRatio: the rate limiter is a property of the replay table, not of a driver.

Pure: imports neither torch nor ray. A shard asks it before every insert and every sample; the host blocks the
call until the answer is yes (distributed/hosts.py) and the limiter counts how long each side was blocked.

Counted in transitions: `samples_per_insert` transitions are sampled per transition inserted once the table holds
`min_size_to_sample` episodes. Sampling runs at most `error_buffer` sampled transitions ahead of that ratio, and
inserting at most `error_buffer` ahead of it, so the gap between actors and learner is fixed by the buffer, not by
the number of actors. Neither side can block the other for good: when sampling is refused, diff <= -buffer, so
inserting is allowed, and the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RateLimiter:
    samples_per_insert: float
    min_size_to_sample: int  # episodes the table holds before the first sample
    error_buffer: float  # transitions (in sampled-transition units) either side may run ahead
    inserted: int = 0  # transitions inserted since the table reached min_size_to_sample
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
        return not self.started or self.diff < self.error_buffer

    def can_sample(self, size_episodes: int) -> bool:
        return self.started and size_episodes >= self.min_size_to_sample and self.diff > -self.error_buffer

    def inserted_now(self, transitions: int, size_episodes: int) -> None:
        """Count an insert; the ratio's clock starts when the table first holds min_size_to_sample episodes."""
        if self.started:
            self.inserted += transitions
        elif size_episodes >= self.min_size_to_sample:
            self.started = True

    def sampled_now(self, transitions: int) -> None:
        self.sampled += transitions

    def blocked(self, side: str, seconds: float) -> None:
        if side == "insert":
            self.insert_blocked_s += seconds
            self.inserts_blocked += 1
        else:
            self.sample_blocked_s += seconds
            self.samples_blocked += 1

    def state(self) -> dict:
        return {
            "inserted": self.inserted,
            "sampled": self.sampled,
            "started": self.started,
            "insert_blocked_s": self.insert_blocked_s,
            "sample_blocked_s": self.sample_blocked_s,
            "inserts_blocked": self.inserts_blocked,
            "samples_blocked": self.samples_blocked,
        }

    def load_state(self, state: dict) -> None:
        for k, v in state.items():
            if hasattr(self, k):
                setattr(self, k, type(getattr(self, k))(v))
