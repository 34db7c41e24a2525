"""Learning side of tokenq: the Q-network, the Double-DQN loss, the learner, references (tabular, exact Q*)."""
