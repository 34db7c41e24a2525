import math

import numpy as np
import pytest
import torch

from actors.tasks import make_task
from learner.losses import (
    double_dqn_loss,
    nstep_targets,
    sequence_priorities,
    soft_q_loss,
    soft_values,
    valid_mask,
)
from learner.tabular import enumerate_states, q_star, soft_q_star, soft_value


def test_two_step_double_dqn_target_by_hand():
    # One episode of length 3, gamma 0.5, n = 2. Online picks the bootstrap action, target values it.
    q_online = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [5.0, 6.0]]])  # argmax at s_2 is action 1
    q_target = torch.tensor([[[9.0, 9.0], [10.0, 20.0], [30.0, 40.0]]])
    a_t = torch.tensor([[1, 0, 1]])
    r_t = torch.tensor([[1.0, 2.0, 3.0]])
    out = double_dqn_loss(q_online, q_target, a_t, r_t, torch.tensor([3]), torch.ones(1), gamma=0.5, n_step=2)
    # y_0 = 1 + 0.5*2 + 0.25 * Q_target(s_2, argmax_a Q_online(s_2, a) = 1) = 1 + 1 + 10 = 12
    # y_1 = 2 + 0.5*3 (s_3 is terminal) = 3.5;  y_2 = 3
    # td = y - Q_online(s_t, a_t) = [12 - 1, 3.5 - 2, 3 - 6]
    torch.testing.assert_close(out.td_t, torch.tensor([[11.0, 1.5, -3.0]]))
    # Huber(delta=1): |td| - 0.5 for all three, averaged: (10.5 + 1.0 + 2.5) / 3
    torch.testing.assert_close(out.loss, torch.tensor(14.0 / 3))


def test_double_dqn_differs_from_max_and_masks_padding():
    # At s_1 online prefers action 0 while the target's own max is action 1 (20 > 10): Double DQN takes 10.
    q_online = torch.tensor([[[0.0, 0.0], [3.0, 1.0], [7.0, 7.0]]])
    q_target = torch.tensor([[[0.0, 0.0], [10.0, 20.0], [7.0, 7.0]]])
    out = double_dqn_loss(
        q_online,
        q_target,
        torch.tensor([[0, 0, 0]]),
        torch.tensor([[1.0, 0.0, 5.0]]),
        torch.tensor([2]),
        torch.ones(1),
        gamma=0.9,
        n_step=1,
    )
    # y_0 = 1 + 0.9 * 10 = 10; y_1 = 0 (s_2 terminal); step 2 is padding.
    torch.testing.assert_close(out.td_t, torch.tensor([[10.0, -3.0, 0.0]]))


def test_nstep_targets_truncate_at_episode_end():
    r = torch.tensor([[1.0, 1.0, 1.0, 9.0]])
    v = torch.tensor([[5.0, 5.0, 5.0, 9.0]])
    y = nstep_targets(r, v, torch.tensor([3]), gamma=0.5, n=1)
    torch.testing.assert_close(y, torch.tensor([[3.5, 3.5, 1.0, 0.0]]))


def test_importance_weights_scale_the_loss():
    q = torch.zeros(2, 1, 2)
    args = (q, q, torch.zeros(2, 1, dtype=torch.long), torch.tensor([[0.5], [0.5]]), torch.tensor([1, 1]))
    full = double_dqn_loss(*args, torch.ones(2), gamma=0.9, n_step=1).loss
    half = double_dqn_loss(*args, torch.tensor([1.0, 0.0]), gamma=0.9, n_step=1).loss
    torch.testing.assert_close(full, torch.tensor(0.125))  # 0.5 * 0.5^2
    torch.testing.assert_close(half, torch.tensor(0.0625))


def test_sequence_priorities_r2d2_mix():
    td = torch.tensor([[1.0, -3.0, 2.0, 100.0]])
    p = sequence_priorities(td, torch.tensor([3]))
    torch.testing.assert_close(p, torch.tensor([0.9 * 3 + 0.1 * 2.0]))


def test_soft_values_by_hand_and_their_limits():
    q = torch.tensor([[1.0, 2.0, 4.0]])
    # uniform reference: beta log mean exp(q / beta)
    want = 0.5 * math.log((math.exp(2.0) + math.exp(4.0) + math.exp(8.0)) / 3)
    torch.testing.assert_close(soft_values(q, None, 0.5), torch.tensor([want]))
    # a reference with no mass on the best token: the soft value tends to the max over its support as beta -> 0
    log_ref = torch.log(torch.tensor([[0.5, 0.5, 0.0]]))
    assert abs(float(soft_values(q, log_ref, 1e-3)) - 2.0) < 1e-2
    assert abs(float(soft_values(q, None, 1e-3)) - 4.0) < 1e-2
    # Q = 0: V = beta log sum pi_ref = 0 for every beta, whatever the reference
    ref = torch.log_softmax(torch.randn(2, 5, 7), -1)
    torch.testing.assert_close(soft_values(torch.zeros(2, 5, 7), ref, 0.3), torch.zeros(2, 5))


def test_the_soft_backup_holds_at_the_warm_start_and_bootstraps_from_the_target_soft_value():
    B, T, V = 2, 4, 6
    ref = torch.log_softmax(torch.randn(B, T, V), -1)
    a_t, lengths = torch.randint(0, V, (B, T)), torch.tensor([4, 2])
    zero = soft_q_loss(
        torch.zeros(B, T, V),
        torch.zeros(B, T, V),
        ref,
        a_t,
        torch.zeros(B, T),
        lengths,
        torch.ones(B),
        gamma=1.0,
        n_step=1,
        beta=0.1,
    )
    assert float(zero.loss) < 1e-12 and zero.td_t.abs().max() < 1e-6  # Q = 0, r = 0: no TD error (up to rounding)
    q_target = torch.randn(B, T, V)
    r_t = torch.randn(B, T)
    out = soft_q_loss(torch.zeros(B, T, V), q_target, ref, a_t, r_t, lengths, torch.ones(B), 0.9, 1, 0.1)
    v = soft_values(q_target, ref, 0.1)
    # y_t = r_t + gamma V_target(s_{t+1}) before the end; the last step's target is its reward
    torch.testing.assert_close(out.td_t[0, :3], r_t[0, :3] + 0.9 * v[0, 1:])
    torch.testing.assert_close(out.td_t[1], torch.stack([r_t[1, 0] + 0.9 * v[1, 1], r_t[1, 1], *torch.zeros(2)]))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_the_soft_n_step_target_holds_off_policy_when_q_is_consistent(n):
    """Path consistency: rewards made from a Q that satisfies Q(s_t, a_t) = r_t + gamma V(s_{t+1}) along any
    actions, and that Q is the n-step target's fixed point for every n, since each inner action pays
    Q - V = beta log (pi / pi_ref). Without that cost the target is off by the KL of the inner steps."""
    torch.manual_seed(0)
    B, T, V, gamma, beta = 3, 6, 5, 0.9, 0.2
    q = torch.randn(B, T, V)
    ref = torch.log_softmax(torch.randn(B, T, V), -1)
    a_t, lengths = torch.randint(0, V, (B, T)), torch.tensor([6, 4, 1])
    v = soft_values(q, ref, beta)
    q_a = q.gather(-1, a_t[..., None]).squeeze(-1)
    nxt = torch.cat([v[:, 1:], torch.zeros(B, 1)], 1) * valid_mask(lengths - 1, T)
    r_t = q_a - gamma * nxt  # the last step of each episode: r = Q
    out = soft_q_loss(q, q, ref, a_t, r_t, lengths, torch.ones(B), gamma, n, beta)
    assert out.td_t.abs().max() < 1e-5
    plain = nstep_targets(r_t, v, lengths, gamma, n) - q_a * valid_mask(lengths, T)
    assert (plain.abs().max() > 0.1) == (n > 1)


def test_soft_q_star_satisfies_the_soft_bellman_equation_and_tends_to_q_star():
    task = make_task("tiny")
    hard = q_star(task, gamma=0.9)
    soft = soft_q_star(task, gamma=0.9, beta=0.2)
    eos = task.tokenizer.eos_id
    for prompt, prefix in enumerate_states(task):
        q = soft[(prompt.tobytes(), prefix)]
        for a in range(task.vocab_size):
            r = float(task.rewards(prompt[None], np.array([[*prefix, a]]), len(prefix))[0])
            last = a == eos or len(prefix) + 1 >= task.max_steps
            nxt = 0.0 if last else 0.9 * soft_value(soft[(prompt.tobytes(), (*prefix, a))], 0.2)
            assert abs(q[a] - (r + nxt)) < 1e-9
        # a soft value is below the hard max by at most beta log V per step ahead
        assert np.all(q <= hard[(prompt.tobytes(), prefix)] + 1e-9)
    near = soft_q_star(task, gamma=0.9, beta=1e-3)
    assert max(float(np.abs(near[s] - hard[s]).max()) for s in hard) < 0.02
