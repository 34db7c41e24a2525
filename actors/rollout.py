"""Batched, KV-cached episode generation; the rollout worker that turns it into prioritized replay data.

Plain Python (no ray): the serial driver calls RolloutWorker directly, distributed/hosts.py hosts it as a Ray actor.
"""

from __future__ import annotations

import numpy as np
import torch

from actors.policy import GREEDY, Policy
from actors.tasks import PromptSource, Reference, Task
from actors.tokenizer import PAD
from learner.config import QNetConfig
from learner.losses import nstep_targets, sequence_priorities
from learner.model import make_network
from learner.qfunction import QFunction
from replay.episodes import EpisodeBatch


@torch.no_grad()
def generate(
    net: QFunction,
    task: Task,
    prompts: np.ndarray,
    epsilon: float | np.ndarray,
    rng: np.random.Generator,
    policy: Policy = GREEDY,
) -> EpisodeBatch:
    """Run B episodes at once with the KV-cached decoder: `policy` (actors/policy.py), epsilon-greedy on top. The
    episodes keep Q(s_t, a_t) and V(s_t) under the policy's backup, for their initial priorities."""
    B, S = len(prompts), task.max_steps
    device = next(net.parameters()).device
    q, cache = net.start(torch.as_tensor(prompts, device=device), S)
    actions = np.full((B, S), PAD, dtype=np.int64)
    q_taken = np.zeros((B, S), dtype=np.float32)
    values = np.zeros((B, S), dtype=np.float32)
    lengths = np.full(B, S, dtype=np.int64)
    alive = np.ones(B, dtype=bool)
    ref = net.reference_log_probs(cache) is not None  # the network's own pass gives the prior's log-probs too
    ref_taken, ref_best = np.zeros((B, S), dtype=np.float32), np.zeros((B, S), dtype=np.float32)
    for t in range(S):
        logp = net.reference_log_probs(cache)
        q_np = q.float().cpu().numpy()  # the step's copies to the host: Q, and log pi_ref for the soft policy
        ref_np = logp.float().cpu().numpy() if logp is not None and policy.beta is not None else None
        a, v = policy.act(q_np, ref_np, epsilon, rng)
        actions[alive, t] = a[alive]
        q_taken[alive, t] = q_np[alive, a[alive]]
        values[alive, t] = v[alive]
        if ref:
            rows = torch.as_tensor(a, device=logp.device)[:, None]
            ref_taken[:, t] = logp.gather(1, rows)[:, 0].cpu().numpy()
            ref_best[:, t] = logp.amax(1).cpu().numpy()
        ended = alive & (a == task.tokenizer.eos_id)
        lengths[ended] = t + 1
        alive &= ~ended
        if not alive.any() or t == S - 1:
            break
        q = net.step(torch.as_tensor(actions[:, t], device=device), cache)
    T = int(lengths.max())
    actions, q_taken, values = actions[:, :T], q_taken[:, :T], values[:, :T]
    reference = Reference(ref_taken[:, :T], ref_best[:, :T]) if ref else None
    rewards = task.episode_rewards(prompts, actions, lengths, reference)
    return EpisodeBatch(prompts, actions, rewards, lengths, q_taken=q_taken, values=values)


def initial_priorities(batch: EpisodeBatch, gamma: float, n_step: int) -> np.ndarray:
    """Ape-X actor-side priorities from the acting network's own Q-values: |n-step target - Q(s_t, a_t)|."""
    lengths = torch.as_tensor(batch.lengths)
    y_t = nstep_targets(torch.as_tensor(batch.rewards), torch.as_tensor(batch.values), lengths, gamma, n_step)
    td_t = y_t - torch.as_tensor(batch.q_taken)
    return sequence_priorities(td_t, lengths).numpy()


class RolloutWorker:
    """Generates batches of episodes with its own copy of the Q-network, its policy and a fixed epsilon."""

    def __init__(
        self,
        task: Task,
        net_cfg: QNetConfig,
        prompts: PromptSource,
        epsilon: float,
        batch_size: int,
        gamma: float,
        n_step: int,
        seed: int,
        policy: Policy = GREEDY,
        net: torch.nn.Module | None = None,
    ):
        """`net`: the acting network, already built (default: built from net_cfg)."""
        self.task, self.prompts, self.policy = task, prompts, policy
        self.epsilon, self.batch_size, self.gamma, self.n_step = epsilon, batch_size, gamma, n_step
        self.rng = np.random.default_rng(seed)
        self.net = (net if net is not None else make_network(net_cfg)).eval()
        self.weights_version = -1
        self.env_steps = 0
        self.episodes = 0

    def set_weights(self, state_dict: dict[str, torch.Tensor], version: int) -> None:
        self.net.load_state_dict(state_dict)
        self.weights_version = version

    def rollout(self) -> EpisodeBatch:
        prompts = self.prompts.sample(self.batch_size)
        batch = generate(self.net, self.task, prompts, self.epsilon, self.rng, self.policy)
        batch.priorities = initial_priorities(batch, self.gamma, self.n_step)
        batch.versions = np.full(len(batch.lengths), self.weights_version, dtype=np.int64)  # staleness, per episode
        self.env_steps += batch.num_transitions
        self.episodes += len(batch.lengths)
        return batch
