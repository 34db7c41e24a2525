"""How actors pick tokens from Q (pure: numpy only): the acting policy (greedy or sampled, hard or soft),
epsilon-greedy exploration on top of it, and the Ape-X per-actor exploration schedule.

Under the hard backup the policy's logits are Q itself (greedy: argmax Q; sampled: softmax(Q / temperature)).
Under the soft backup (learner.backup=soft) the policy is pi(a|s) = pi_ref(a|s) exp((Q(s, a) - V(s)) / beta): its
logits are log pi_ref + Q / beta, with pi_ref the network's reference model or, without one, uniform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


def ape_x_epsilons(epsilon: float, alpha: float, num_actors: int) -> list[float]:
    """eps_i = eps^(1 + alpha * i / (N - 1)) for actor i of N (Horgan et al. 2018); one actor gets eps itself."""
    if num_actors == 1:
        return [epsilon]
    return [epsilon ** (1 + alpha * i / (num_actors - 1)) for i in range(num_actors)]


@dataclass(frozen=True)
class Policy:
    """The acting policy, on host arrays (B, V). `beta`: the soft backup's temperature (None: the hard backup).
    `sample`: draw from the policy's distribution, restricted to its `top_k` most likely tokens (0: all) and the
    smallest set holding `top_p` of its mass; otherwise take its most likely token. `explore`, `temperature`:
    epsilon's exploratory token, uniform or from softmax(Q / temperature)."""

    beta: float | None = None
    sample: bool = False
    top_k: int = 0
    top_p: float = 1.0
    temperature: float = 1.0
    explore: str = "uniform"

    def greedy(self) -> Policy:
        """The same policy's most likely token: what evaluation's greedy decoding reads."""
        return replace(self, sample=False)

    def logits(self, q: np.ndarray, log_ref: np.ndarray | None) -> np.ndarray:
        """(B, V) the policy's unnormalised log-probabilities at Q(s, .) (and log pi_ref(. | s), soft only)."""
        if self.beta is None:
            return q / self.temperature if self.sample else q
        z = q.astype(np.float64) / self.beta
        return z + log_ref if log_ref is not None else z

    def values(self, q: np.ndarray, log_ref: np.ndarray | None) -> np.ndarray:
        """(B,) V(s) under the learner's backup: max Q (hard), beta log E_pi_ref exp(Q / beta) (soft)."""
        if self.beta is None:
            return q.max(-1)
        v = self.beta * logsumexp(self.logits(q, log_ref))
        return v - self.beta * math.log(q.shape[-1]) if log_ref is None else v

    def choose(self, logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(B,) tokens from the policy's logits: the most likely, or a sample from the top-k / top-p set."""
        if not self.sample:
            return logits.argmax(-1)
        z = logits.astype(np.float64)
        B, V = z.shape
        if 0 < self.top_k < V:
            kth = np.partition(z, V - self.top_k, axis=-1)[:, V - self.top_k][:, None]
            z = np.where(z < kth, -np.inf, z)
        if self.top_p < 1.0:
            order = np.argsort(-z, axis=-1)
            ordered = np.take_along_axis(z, order, -1)
            probs = np.exp(ordered - ordered[:, :1])
            probs /= probs.sum(-1, keepdims=True)
            drop = np.cumsum(probs, -1) - probs > self.top_p  # the most likely token always stays
            np.put_along_axis(z, order, np.where(drop, -np.inf, ordered), -1)
        cdf = np.cumsum(np.exp(z - z.max(-1, keepdims=True)), -1)
        u = rng.random(B)[:, None] * cdf[:, -1:]
        return np.minimum((cdf < u).sum(1), V - 1)

    def act(
        self, q: np.ndarray, log_ref: np.ndarray | None, epsilon: float | np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(actions (B,), V(s) (B,)) for one step of B episodes at Q(s, .) (B, V)."""
        base = self.choose(self.logits(q, log_ref), rng)
        return epsilon_greedy(q, epsilon, rng, self.explore, self.temperature, base), self.values(q, log_ref)


def logsumexp(z: np.ndarray) -> np.ndarray:
    m = z.max(-1)
    return m + np.log(np.exp(z - m[:, None]).sum(-1))


GREEDY = Policy()


def epsilon_greedy(
    q: np.ndarray,
    epsilon: float | np.ndarray,
    rng: np.random.Generator,
    explore: str = "uniform",
    temperature: float = 1.0,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """q (B, V) host array -> (B,) actions: `base` (default argmax Q) with probability 1 - eps; otherwise a uniform
    token ("uniform"), or a sample from softmax(q / temperature) ("softmax": over a large vocabulary, a uniform token
    is almost never a word that fits, while a warm-started Q-network's softmax proposes ones that do)."""
    chosen = q.argmax(-1) if base is None else base
    if np.all(np.asarray(epsilon) == 0):
        return chosen
    B, V = q.shape
    if explore == "softmax":
        logits = (q.astype(np.float64) - q.max(-1, keepdims=True)) / temperature
        cdf = np.cumsum(np.exp(logits), axis=1)
        u = rng.random(B)[:, None] * cdf[:, -1:]
        random_tokens = np.minimum((cdf < u).sum(1), V - 1)
    else:
        random_tokens = rng.integers(0, V, size=B)
    return np.where(rng.random(B) < epsilon, random_tokens, chosen)
