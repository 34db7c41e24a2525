"""The Double-DQN target and loss over whole sequences. Pure: no distributed or logging dependencies.

For an episode of length L with rewards r_0..r_{L-1} (s_L is terminal: EOS or the step limit):
    y_t = sum_{k<n, t+k<L} gamma^k r_{t+k} + gamma^n Q_target(s_{t+n}, argmax_a Q_online(s_{t+n}, a)) [t+n < L]
(van Hasselt et al. 2016, with the n-step return of Hessel et al. 2018).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) True where step t < length."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def nstep_targets(
    r_t: torch.Tensor,
    v_t: torch.Tensor,
    lengths: torch.Tensor,
    gamma: float,
    n: int,
    cost_t: torch.Tensor | None = None,
) -> torch.Tensor:
    """n-step targets y_t (B, T) from rewards r_t (B, T) and bootstrap values v_t = V(s_t) (B, T).

    Values at or past the episode's length are ignored (terminal), as are rewards past it. `cost_t` (B, T), where
    given, is charged at every step of the n but the first: y_t = r_t + sum_{0<k<n} gamma^k (r_{t+k} - cost_{t+k})
    + gamma^n v_{t+n} (the soft backup's KL cost of the actions taken inside the n steps, soft_q_loss).
    """
    T = r_t.shape[1]
    mask = valid_mask(lengths, T)
    r_t = r_t * mask
    v_t = v_t * mask
    paid_t = r_t if cost_t is None else r_t - cost_t * mask  # what a step inside the n pays
    y_t = r_t.clone()
    for k in range(1, min(n, T)):
        y_t[:, : T - k] += gamma**k * paid_t[:, k:]
    if n < T:
        y_t[:, : T - n] += gamma**n * v_t[:, n:]
    return y_t * mask


def sequence_priorities(td_t: torch.Tensor, lengths: torch.Tensor, eta: float = 0.9) -> torch.Tensor:
    """Per-sequence priority eta * max|td| + (1 - eta) * mean|td| over valid steps (R2D2, Kapturowski et al. 2019)."""
    abs_td = td_t.abs() * valid_mask(lengths, td_t.shape[1])
    return eta * abs_td.max(1).values + (1 - eta) * abs_td.sum(1) / lengths.clamp(min=1)


class LossOutput(NamedTuple):
    loss: torch.Tensor  # scalar
    td_t: torch.Tensor  # (B, T) y_t - Q_online(s_t, a_t), zero past the episode's end
    q_taken_t: torch.Tensor  # (B, T) Q_online(s_t, a_t)
    v_online_t: torch.Tensor  # (B, T) max_a Q_online(s_t, a)


def double_dqn_loss(
    q_online_t: torch.Tensor,
    q_target_t: torch.Tensor,
    a_t: torch.Tensor,
    r_t: torch.Tensor,
    lengths: torch.Tensor,
    weights: torch.Tensor,
    gamma: float,
    n_step: int,
    huber_delta: float = 1.0,
) -> LossOutput:
    """Importance-weighted Huber loss of n-step Double-DQN targets over every valid step of every sequence.

    q_online_t, q_target_t: (B, T, V) Q(s_t, .) for t = 0..T-1 from one forward pass each; a_t, r_t: (B, T);
    lengths: (B,); weights: (B,) importance weights of the sampled sequences.
    """
    with torch.no_grad():
        a_star_t = q_online_t.argmax(-1, keepdim=True)
        q_boot_t = q_target_t.gather(-1, a_star_t).squeeze(-1)
    return td_loss(q_online_t, q_boot_t, a_t, r_t, lengths, weights, gamma, n_step, huber_delta)


def soft_values(q: torch.Tensor, log_ref: torch.Tensor | None, beta: float) -> torch.Tensor:
    """V(s) = beta log sum_a pi_ref(a|s) exp(Q(s, a) / beta) over the last axis: the value of the KL-regularised
    token MDP whose policy is pi_ref exp((Q - V) / beta). `log_ref` (same shape as q) log pi_ref, or None for the
    uniform reference (the entropy-regularised MDP). As beta -> 0 it becomes max Q over pi_ref's support."""
    z = q.float() / beta
    if log_ref is None:
        return beta * (torch.logsumexp(z, -1) - math.log(q.shape[-1]))
    return beta * torch.logsumexp(z + log_ref.float(), -1)


def soft_q_loss(
    q_online_t: torch.Tensor,
    q_target_t: torch.Tensor,
    log_ref_t: torch.Tensor | None,
    a_t: torch.Tensor,
    r_t: torch.Tensor,
    lengths: torch.Tensor,
    weights: torch.Tensor,
    gamma: float,
    n_step: int,
    beta: float,
    huber_delta: float = 1.0,
) -> LossOutput:
    """double_dqn_loss with the soft backup: the target bootstraps from the target network's soft value
    V_target(s_{t+n}) (soft_values; log_ref_t (B, T, V) log pi_ref(. | s_t), or None for uniform). Q = 0 and r = 0
    give y = 0: the warm start, whose policy is pi_ref, is Bellman-consistent.

    With n > 1 each action taken inside the n steps pays its KL cost beta log (pi / pi_ref)(a|s) = Q(s, a) - V(s),
    from the target network: since r(s, a) - beta log (pi* / pi_ref)(a|s) = V*(s) - gamma V*(s') for every action
    of a deterministic MDP (path consistency, Nachum et al. 2017), Q* is then the target's fixed point whatever
    policy took the actions. Without the cost, steps the sampler took away from pi_ref look free, and the n-step
    return pulls the policy away from the model's fluency."""
    with torch.no_grad():
        v_boot_t = soft_values(q_target_t, log_ref_t, beta)
        cost_t = q_target_t.float().gather(-1, a_t[..., None]).squeeze(-1) - v_boot_t if n_step > 1 else None
    out = td_loss(q_online_t, v_boot_t, a_t, r_t, lengths, weights, gamma, n_step, huber_delta, cost_t)
    with torch.no_grad():
        return out._replace(v_online_t=soft_values(q_online_t.detach(), log_ref_t, beta))


def td_loss(
    q_online_t: torch.Tensor,
    boot_t: torch.Tensor,
    a_t: torch.Tensor,
    r_t: torch.Tensor,
    lengths: torch.Tensor,
    weights: torch.Tensor,
    gamma: float,
    n_step: int,
    huber_delta: float,
    cost_t: torch.Tensor | None = None,
) -> LossOutput:
    """The importance-weighted Huber loss of n-step targets bootstrapped from boot_t = V(s_t) (B, T); `cost_t`
    as nstep_targets takes it."""
    mask = valid_mask(lengths, a_t.shape[1])
    q_taken_t = q_online_t.gather(-1, a_t[..., None]).squeeze(-1)
    with torch.no_grad():
        y_t = nstep_targets(r_t, boot_t.float(), lengths, gamma, n_step, cost_t)
    td_t = (y_t - q_taken_t.float()) * mask
    per_step = F.huber_loss(q_taken_t.float(), y_t, reduction="none", delta=huber_delta)
    loss = (per_step * mask * weights[:, None]).sum() / mask.sum().clamp(min=1)
    return LossOutput(loss, td_t.detach(), q_taken_t.detach(), q_online_t.detach().max(-1).values)
