import torch

from learner.losses import double_dqn_loss, nstep_targets, sequence_priorities


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
