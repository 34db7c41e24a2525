"""The versioned weight store: the learner publishes (version, payload), actors ask for anything newer.

Plain Python (no ray). In local/cluster mode the payload is `[ObjectRef]` from one `ray.put` of the learner's
state dict (wrapped in a list so that Ray passes the reference instead of resolving it).
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Published(NamedTuple):
    """What the store hands an actor: the weights' version, their payload, and the store's generation."""

    version: int
    payload: Any
    generation: int


class WeightStore:
    def __init__(self) -> None:
        self.version = -1
        self.payload: Any = None
        self.generation = 0  # bumped when a restarted learner rolls the store back to a checkpoint

    def publish(self, version: int, payload: Any) -> bool:
        """Keep `payload` if it is newer than what is stored; an older or equal version is ignored."""
        if version <= self.version:
            return False
        self.version, self.payload = version, payload
        return True

    def restore(self, version: int, payload: Any) -> None:
        """Roll back to `version` (a learner restarted from a checkpoint): every actor takes it, even if it holds a
        newer version of the generation before."""
        self.version, self.payload = version, payload
        self.generation += 1

    def latest(self, have_version: int, have_generation: int | None = None) -> Published | None:
        """What the store holds when it is newer than `have_version` or, with `have_generation`, when the store
        was rolled back since that generation; else None."""
        rolled_back = have_generation is not None and self.generation != have_generation
        if self.version > have_version or rolled_back:
            return Published(self.version, self.payload, self.generation)
        return None

    def current_version(self) -> int:
        return self.version
