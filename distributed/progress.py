"""What the Ray driver counts from the progress its actors, learner and shards report.

Plain Python (no ray): rollout actors report totals since their process started (a restarted process starts from
zero, told apart by its process id); the learner reports its own counters and staleness figures; the shards their
sizes, faults and rate-limiter counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACTOR_TOTALS = ("transitions", "episodes", "push_lost")
# Learner figures that restart at zero with a replacement learner: kept summed over learner processes.
LEARNER_TOTALS = ("lost_samples", "wall_s", "idle_s")


@dataclass
class DriverCounters:
    """The driver's counts; CHECKPOINTED ones travel in the learner's checkpoints and come back on --resume."""

    num_actors: int = 1
    env_steps: int = 0
    episodes: int = 0
    push_lost: int = 0
    actor_restarts: int = 0
    learner_restarts: int = 0
    # From the learner's progress.
    updates: int = 0
    trained: int = 0
    published_version: int = 0
    nonfinite_updates: int = 0
    rollbacks: int = 0
    metrics: dict = field(default_factory=dict)
    lag_mean: float | None = None  # over the episodes sampled since the last report
    lag_max: int | None = None
    age_s: float | None = None
    run_lag_mean: float = 0.0  # over every episode the current learner sampled
    run_lag_max: int = 0
    run_age_s: float = 0.0
    learner_now: dict = field(default_factory=dict)  # LEARNER_TOTALS of the current learner process
    learner_before: dict = field(default_factory=dict)  # LEARNER_TOTALS of the learner processes before it
    versions: dict[int, int] = field(default_factory=dict)  # actor index -> weights version it acts with
    last_actor: dict[int, tuple[int, dict]] = field(default_factory=dict)  # actor index -> (pid, its totals)
    shards: dict = field(default_factory=lambda: shard_totals([], 0, {}))

    CHECKPOINTED = ("env_steps", "episodes", "push_lost", "actor_restarts", "learner_restarts")

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.CHECKPOINTED}

    def load_state(self, state: dict) -> None:
        for k in self.CHECKPOINTED:
            if k in state:
                setattr(self, k, int(state[k]))

    def actor(self, i: int, progress: dict) -> list[float]:
        """Count what actor i did since its last report; returns the episode returns it reported."""
        pid, totals = progress["pid"], {k: int(progress[k]) for k in ACTOR_TOTALS}
        last_pid, last = self.last_actor.get(i, (None, dict.fromkeys(ACTOR_TOTALS, 0)))
        if pid != last_pid:  # a new process counts from zero
            last = dict.fromkeys(ACTOR_TOTALS, 0)
        self.env_steps += totals["transitions"] - last["transitions"]
        self.episodes += totals["episodes"] - last["episodes"]
        self.push_lost += totals["push_lost"] - last["push_lost"]
        self.last_actor[i] = (pid, totals)
        self.versions[i] = int(progress["weights_version"])
        return progress["returns"]

    def learner(self, progress: dict) -> None:
        self.updates, self.trained = int(progress["updates"]), int(progress["transitions_trained"])
        self.published_version = int(progress["published_version"])
        self.metrics = progress["metrics"] or self.metrics
        self.nonfinite_updates, self.rollbacks = int(progress["nonfinite_updates"]), int(progress["rollbacks"])
        if progress["episode_lag_mean"] is not None:
            self.lag_mean, self.lag_max = progress["episode_lag_mean"], progress["episode_lag_max"]
            self.age_s = progress["sample_age_s"]
        self.run_lag_mean, self.run_lag_max = progress["run_lag_mean"], max(self.run_lag_max, progress["run_lag_max"])
        self.run_age_s = progress["run_age_s"]
        self.learner_now = {k: progress[k] for k in LEARNER_TOTALS}

    def learner_replaced(self) -> None:
        for k in LEARNER_TOTALS:
            self.learner_before[k] = self.learner_before.get(k, 0) + self.learner_now.get(k, 0)
        self.learner_now = {}

    def learner_total(self, name: str) -> float:
        return self.learner_before.get(name, 0) + self.learner_now.get(name, 0)

    @property
    def lost_samples(self) -> int:
        return int(self.learner_total("lost_samples"))

    @property
    def learner_idle_frac(self) -> float | None:
        """The learner's time blocked on sampling or the rate limiter, over its time in the loop."""
        wall = self.learner_total("wall_s")
        return self.learner_total("idle_s") / wall if wall > 0 else None

    def learner_summary(self) -> dict:
        """The learner processes' time in the loop and blocked on replay (DistributedTotals' learner_* fields)."""
        wall, idle = self.learner_total("wall_s"), self.learner_total("idle_s")
        return {
            "learner_idle_frac": None if wall <= 0 else round(idle / wall, 4),
            "learner_wall_s": round(wall, 3),
            "learner_idle_s": round(idle, 3),
            "learner_ms_per_update": round(1000 * (wall - idle) / max(self.updates, 1), 2),
        }

    def staleness_summary(self) -> dict:
        """Over the run's sampled episodes (RunTotals' staleness fields)."""
        return {
            "episode_lag_mean": round(self.run_lag_mean, 3),
            "episode_lag_max": self.run_lag_max,
            "sample_age_s": round(self.run_age_s, 3),
        }


def limiter_summary(shards: dict) -> dict:
    """The replay's rate limiter and stale skips from shard_totals (DistributedTotals' fields of that name)."""
    return {
        "samples_per_insert_measured": shards["samples_per_insert"],
        "limiter_transitions_inserted": shards["inserted"],  # since replay.min_size_to_sample was reached
        "limiter_transitions_sampled": shards["sampled"],
        "insert_blocked_s": shards["insert_blocked_s"],
        "sample_blocked_s": shards["sample_blocked_s"],
        "inserts_blocked": shards["inserts_blocked"],
        "samples_blocked": shards["samples_blocked"],
        "stale_episodes_skipped": shards["stale_skipped"],
    }


def shard_totals(stats: list[dict], starts_at_launch: int, limiter: dict) -> dict:
    """The shards' stats summed (size, faults) and the rate limiter's counts."""
    inserted, sampled = limiter.get("inserted", 0), limiter.get("sampled", 0)
    return {
        "size": sum(st["size_transitions"] for st in stats),
        "lost": sum(st.get("lost", 0) for st in stats),
        "restarts": max(0, sum(st.get("starts", 1) for st in stats) - starts_at_launch) if stats else 0,
        "lost_window_s": max((st.get("lost_window_s", 0.0) for st in stats), default=0.0),
        "samples_per_insert": round(sampled / inserted, 4) if inserted else None,
        "inserted": inserted,
        "sampled": sampled,
        "insert_blocked_s": round(limiter.get("insert_blocked_s", 0.0), 3),
        "sample_blocked_s": round(limiter.get("sample_blocked_s", 0.0), 3),
        "inserts_blocked": limiter.get("inserts_blocked", 0),
        "samples_blocked": limiter.get("samples_blocked", 0),
        "stale_skipped": sum(st.get("stale_skipped", 0) for st in stats),
    }
