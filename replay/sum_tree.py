"""A numpy sum tree over a fixed number of slots: O(log N) priority updates and proportional sampling.

Pure: imports neither ray nor torch. Leaves live at [size, 2 * size); node i holds the sum of nodes 2i and 2i+1.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, capacity: int):
        self.size = 1 << max(0, int(capacity - 1).bit_length())
        self.capacity = capacity
        self.nodes = np.zeros(2 * self.size, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.nodes[np.asarray(slots) + self.size]

    def update(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set the leaves at `slots` to `values` (non-negative) and refresh their ancestors, level by level."""
        idx = np.asarray(slots, dtype=np.int64) + self.size
        self.nodes[idx] = values
        idx = np.unique(idx >> 1)
        while idx[0] >= 1:
            self.nodes[idx] = self.nodes[2 * idx] + self.nodes[2 * idx + 1]
            idx = np.unique(idx >> 1)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each cumulative mass in [0, total), the slot whose prefix-sum interval contains it.

        The descent never enters a subtree of zero mass, so a mass that float round-off pushed past the last
        filled leaf (a shard still filling has empty slots after it) lands on that leaf, never on an empty slot.
        """
        mass = np.asarray(mass, dtype=np.float64).copy()
        idx = np.ones(len(mass), dtype=np.int64)
        while idx[0] < self.size:
            left = 2 * idx
            left_sum = self.nodes[left]
            go_right = (mass >= left_sum) & (self.nodes[left + 1] > 0)
            mass = np.where(go_right, mass - left_sum, mass)
            idx = np.where(go_right, left + 1, left)
        return idx - self.size

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n slots drawn with probability proportional to their value, stratified over n equal mass segments."""
        bounds = self.total * (np.arange(n) + rng.random(n)) / n
        return self.find(bounds)
