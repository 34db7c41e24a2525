import numpy as np

from actors.tasks import make_task
from actors.tokenizer import EOS
from learner.tabular import enumerate_states, max_abs_error, q_star, tabular_q_learning


def test_q_star_by_hand_on_tiny():
    task = make_task("tiny")  # letters a=4, b=5; answer = reversed 2-letter prompt, then EOS; 3 steps
    assert len(enumerate_states(task)) == 4 * (1 + 5 + 25)
    table = q_star(task, gamma=0.5)
    ab = np.array([4, 5])
    # s_0 of "ab": emitting b (correct) earns 1 + 0.5 * V(s_1) with V(s_1) = 1 + 0.5 * 1 = 1.5 -> 1.75
    q0 = table[(ab.tobytes(), ())]
    assert q0[5] == 1.75
    assert q0[4] == 0.75  # wrong letter: 0 + 0.5 * 1.5
    assert q0[EOS] == 0.0  # EOS ends the episode with nothing
    # last step (t = 2): only EOS is rewarded and nothing follows
    q2 = table[(ab.tobytes(), (5, 4))]
    assert q2[EOS] == 1.0 and q2[4] == 0.0


def test_tabular_q_learning_converges_to_q_star():
    task = make_task("tiny")
    reference = q_star(task, gamma=0.99)
    learned = tabular_q_learning(task, gamma=0.99, episodes=30_000, alpha=0.5, epsilon=1.0, seed=0)
    assert max_abs_error(learned, reference) < 1e-3
