"""The acting policy (actors/policy.py): greedy and sampled, hard and soft, top-k / top-p, epsilon on top."""

from __future__ import annotations

import numpy as np
import pytest

from actors.policy import GREEDY, Policy

Q = np.array([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
LOG_REF = np.log(np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]))


def frequencies(policy: Policy, q, log_ref, n: int = 20000) -> np.ndarray:
    rng = np.random.default_rng(0)
    qs, refs = np.repeat(q[:1], n, 0), (np.repeat(log_ref[:1], n, 0) if log_ref is not None else None)
    actions, _ = policy.act(qs, refs, 0.0, rng)
    return np.bincount(actions, minlength=q.shape[1]) / n


def test_the_soft_policy_is_pi_ref_times_exp_q_over_beta_and_its_value_the_soft_value():
    beta = 0.5
    soft = Policy(beta=beta, sample=True)
    want = np.exp(LOG_REF[0] + Q[0] / beta)
    np.testing.assert_allclose(frequencies(soft, Q, LOG_REF), want / want.sum(), atol=0.01)
    _, v = soft.act(Q, LOG_REF, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(v, beta * np.log((np.exp(LOG_REF) * np.exp(Q / beta)).sum(1)), rtol=1e-9)
    # no reference model: pi_ref uniform
    _, v = soft.act(Q, None, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(v, beta * np.log(np.exp(Q / beta).mean(1)), rtol=1e-9)
    # its greedy form takes the mode of pi, not of Q
    a, _ = soft.greedy().act(Q, LOG_REF + np.array([[5.0, 0, 0, 0], [0, 0, 0, 0]]), 0.0, np.random.default_rng(0))
    assert a.tolist() == [0, 0]


def test_the_hard_policy_is_argmax_q_and_samples_softmax_q_over_temperature():
    a, v = GREEDY.act(Q, None, 0.0, np.random.default_rng(0))
    assert a.tolist() == [3, 0] and v.tolist() == [3.0, 3.0]
    freq = frequencies(Policy(sample=True, temperature=2.0), Q, None)
    want = np.exp(Q[0] / 2.0)
    np.testing.assert_allclose(freq, want / want.sum(), atol=0.01)


def test_top_k_and_top_p_restrict_the_draw_to_the_most_likely_tokens():
    q = np.log(np.array([[0.05, 0.15, 0.3, 0.5]]))
    freq = frequencies(Policy(sample=True, top_k=2), q, None)
    assert freq[:2].sum() == 0 and freq[3] == pytest.approx(0.5 / 0.8, abs=0.01)
    freq = frequencies(Policy(sample=True, top_p=0.7), q, None)  # 0.5 + 0.3 hold 0.7
    assert freq[:2].sum() == 0 and freq[2] == pytest.approx(0.3 / 0.8, abs=0.01)
    freq = frequencies(Policy(sample=True, top_p=0.1), q, None)  # the most likely token always stays
    assert freq[3] == 1.0


def test_epsilon_still_explores_on_top_of_the_policy():
    rng = np.random.default_rng(0)
    qs = np.repeat(Q[:1], 4000, 0)
    a, _ = Policy(beta=0.01).act(qs, None, 0.5, rng)  # greedy token 3; half the steps a uniform token
    assert (a == 3).mean() == pytest.approx(0.5 + 0.5 / 4, abs=0.03)
