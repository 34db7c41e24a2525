"""The versioned weight store: the learner publishes (version, payload), actors ask for anything newer.

Plain Python (no ray). In local/cluster mode the payload is `[ObjectRef]` from one `ray.put` of the learner's
state dict (wrapped in a list so that Ray passes the reference instead of resolving it).
"""

from __future__ import annotations

from typing import Any


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

    def latest(self, have_version: int, have_generation: int | None = None) -> tuple | None:
        """(version, payload) when the store holds a newer version than `have_version`, else None. With
        `have_generation`: (version, payload, generation) also when the store was rolled back since."""
        if have_generation is None:
            return (self.version, self.payload) if self.version > have_version else None
        if self.version > have_version or self.generation != have_generation:
            return self.version, self.payload, self.generation
        return None

    def current_version(self) -> int:
        return self.version
