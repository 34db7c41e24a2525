"""Epsilon-greedy action selection and the Ape-X per-actor exploration schedule."""

from __future__ import annotations

import numpy as np
import torch


def ape_x_epsilons(epsilon: float, alpha: float, num_actors: int) -> list[float]:
    """eps_i = eps^(1 + alpha * i / (N - 1)) for actor i of N (Horgan et al. 2018); one actor gets eps itself."""
    if num_actors == 1:
        return [epsilon]
    return [epsilon ** (1 + alpha * i / (num_actors - 1)) for i in range(num_actors)]


def epsilon_greedy(q: torch.Tensor, epsilon: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """q (B, V) -> (B,) actions: argmax with probability 1 - eps, a uniform token otherwise."""
    greedy = q.argmax(-1).cpu().numpy()
    if np.all(np.asarray(epsilon) == 0):
        return greedy
    B, V = q.shape
    explore = rng.random(B) < epsilon
    return np.where(explore, rng.integers(0, V, size=B), greedy)
