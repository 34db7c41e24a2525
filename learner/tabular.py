"""References for the neural learner on enumerable tasks: exact Q* (and the soft Q* of the entropy-regularised
MDP) by backward induction, and tabular Q-learning.

A state is (prompt, prefix): the prompt's token ids and the tokens generated so far (no EOS among them).
Pure: imports neither ray nor torch. A task is anything with the attributes actors/tasks.py's Task has
(vocab_size, max_steps, enumerable, name, tokenizer.eos_id, all_prompts(), sample_prompts(), rewards()).
"""

from __future__ import annotations

import itertools

import numpy as np

State = tuple[bytes, tuple[int, ...]]


def _reward(task, prompt: np.ndarray, prefix: tuple[int, ...], action: int) -> float:
    actions = np.array([list(prefix) + [action]], dtype=np.int64)
    return float(task.rewards(prompt[None], actions, len(prefix))[0])


def _terminal(task, prefix: tuple[int, ...], action: int) -> bool:
    return action == task.tokenizer.eos_id or len(prefix) + 1 >= task.max_steps


def enumerate_states(task) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Every non-terminal state of an enumerable task, shortest prefixes first."""
    non_eos = [a for a in range(task.vocab_size) if a != task.tokenizer.eos_id]
    states = []
    for t in range(task.max_steps):
        for prompt in task.all_prompts():
            for prefix in itertools.product(non_eos, repeat=t):
                states.append((prompt, prefix))
    return states


def q_star(task, gamma: float) -> dict[State, np.ndarray]:
    """Q*(s, .) for every state, by backward induction from the longest prefixes:
    Q*(s, a) = r(s, a) + gamma * max_a' Q*(s', a') for non-terminal s', else r(s, a)."""
    return _backward_induction(task, gamma, lambda q: float(q.max()))


def soft_q_star(task, gamma: float, beta: float) -> dict[State, np.ndarray]:
    """The soft Q* of the entropy-regularised MDP (a uniform reference over the vocabulary), by backward induction:
    Q(s, a) = r(s, a) + gamma V(s') with V(s) = beta log mean_a exp(Q(s, a) / beta) (learner/losses.py
    soft_values); terminal s' add nothing. As beta -> 0 it is q_star."""
    return _backward_induction(task, gamma, lambda q: soft_value(q, beta))


def _backward_induction(task, gamma: float, value) -> dict[State, np.ndarray]:
    """Q(s, a) = r(s, a) + gamma value(Q(s', .)) for non-terminal s', else r(s, a), from the longest prefixes."""
    if not task.enumerable:
        raise ValueError(f"task {task.name!r} is too large to enumerate every state")
    table: dict[State, np.ndarray] = {}
    for prompt, prefix in reversed(enumerate_states(task)):
        q = np.zeros(task.vocab_size)
        for a in range(task.vocab_size):
            q[a] = _reward(task, prompt, prefix, a)
            if not _terminal(task, prefix, a):
                q[a] += gamma * value(table[(prompt.tobytes(), prefix + (a,))])
        table[(prompt.tobytes(), prefix)] = q
    return table


def soft_value(q: np.ndarray, beta: float) -> float:
    """beta log mean_a exp(q_a / beta), computed stably."""
    m = q.max()
    return float(m + beta * np.log(np.mean(np.exp((q - m) / beta))))


def tabular_q_learning(
    task, gamma: float, episodes: int, alpha: float = 0.5, epsilon: float = 0.5, seed: int = 0
) -> dict[State, np.ndarray]:
    """The article's rule Q(s,a) <- Q(s,a) + alpha [r + gamma max_a' Q(s',a') - Q(s,a)], epsilon-greedy."""
    rng = np.random.default_rng(seed)
    table: dict[State, np.ndarray] = {}

    def q_of(prompt: np.ndarray, prefix: tuple[int, ...]) -> np.ndarray:
        return table.setdefault((prompt.tobytes(), prefix), np.zeros(task.vocab_size))

    for _ in range(episodes):
        prompt = task.sample_prompts(rng, 1)[0]
        prefix: tuple[int, ...] = ()
        while True:
            q = q_of(prompt, prefix)
            a = int(rng.integers(task.vocab_size)) if rng.random() < epsilon else int(q.argmax())
            r = _reward(task, prompt, prefix, a)
            done = _terminal(task, prefix, a)
            target = r if done else r + gamma * q_of(prompt, prefix + (a,)).max()
            q[a] += alpha * (target - q[a])
            if done:
                break
            prefix = prefix + (a,)
    return table


def max_abs_error(table: dict[State, np.ndarray], reference: dict[State, np.ndarray]) -> float:
    """max over every reference state and action of |Q - Q*| (unvisited states count as Q = 0)."""
    zeros = np.zeros_like(next(iter(reference.values())))
    return max(float(np.abs(table.get(s, zeros) - q).max()) for s, q in reference.items())
