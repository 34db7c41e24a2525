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

    def publish(self, version: int, payload: Any) -> bool:
        """Keep `payload` if it is newer than what is stored; an older or equal version is ignored."""
        if version <= self.version:
            return False
        self.version, self.payload = version, payload
        return True

    def latest(self, have_version: int) -> tuple[int, Any] | None:
        """(version, payload) when the store holds a newer version than `have_version`, else None."""
        if self.version > have_version:
            return self.version, self.payload
        return None

    def current_version(self) -> int:
        return self.version
