"""Epsilon-greedy action selection and the Ape-X per-actor exploration schedule."""

from __future__ import annotations

import numpy as np


def ape_x_epsilons(epsilon: float, alpha: float, num_actors: int) -> list[float]:
    """eps_i = eps^(1 + alpha * i / (N - 1)) for actor i of N (Horgan et al. 2018); one actor gets eps itself."""
    if num_actors == 1:
        return [epsilon]
    return [epsilon ** (1 + alpha * i / (num_actors - 1)) for i in range(num_actors)]


def epsilon_greedy(
    q: np.ndarray,
    epsilon: float | np.ndarray,
    rng: np.random.Generator,
    explore: str = "uniform",
    temperature: float = 1.0,
) -> np.ndarray:
    """q (B, V) host array -> (B,) actions: argmax with probability 1 - eps; otherwise a uniform token ("uniform"),
    or a sample from softmax(q / temperature) ("softmax": over a large vocabulary, a uniform token is almost never
    a word that fits, while a warm-started Q-network's softmax proposes ones that do)."""
    greedy = q.argmax(-1)
    if np.all(np.asarray(epsilon) == 0):
        return greedy
    B, V = q.shape
    if explore == "softmax":
        logits = (q.astype(np.float64) - q.max(-1, keepdims=True)) / temperature
        cdf = np.cumsum(np.exp(logits), axis=1)
        u = rng.random(B)[:, None] * cdf[:, -1:]
        random_tokens = np.minimum((cdf < u).sum(1), V - 1)
    else:
        random_tokens = rng.integers(0, V, size=B)
    return np.where(rng.random(B) < epsilon, random_tokens, greedy)
