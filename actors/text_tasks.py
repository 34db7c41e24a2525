"""Text tasks over a word vocabulary, rewarded against a frozen language-model prior (Jaques et al. 2017).

`keywords`: the prompt names required words; reward `keyword_reward` the first time each appears, `eos_reward` for
ending with EOS, and `prior_coef` times a fluency term per token. `fluency`: the fluency term alone (plus EOS).
The fluency term is either the prior's log p(a|s) ("logp") or its gap to the prior's most likely token
("gap" = log p(a|s) - max_a' log p(a'|s) <= 0): the gap costs nothing along the prior's own greedy sentence, so
it does not, as raw log p does, pay the policy to end every sentence early.
"""

from __future__ import annotations

import numpy as np
import torch

from actors.tasks import Task, TaskError
from actors.text import WordTokenizer
from actors.tokenizer import EOS
from learner.model import QNetwork


class PriorModel:
    """A frozen pretrained network read as a language model: its outputs are next-token logits."""

    def __init__(self, net: QNetwork):
        self.net = net.eval().requires_grad_(False)

    @torch.no_grad()
    def token_log_probs(self, prompts: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(a_t | s_t), max_a log p(a | s_t)), each (B, T), from one causal pass over whole sequences."""
        logits = self.net(torch.as_tensor(prompts), torch.as_tensor(actions[:, :-1]))  # (B, T, V)
        logp = torch.log_softmax(logits.float(), dim=-1)
        taken = logp.gather(-1, torch.as_tensor(actions)[..., None]).squeeze(-1)
        return taken.numpy(), logp.max(-1).values.numpy()


class TextTask(Task):
    def __init__(
        self,
        name: str,
        tokenizer: WordTokenizer,
        prior: PriorModel | None,
        num_keywords: int,
        max_length: int,
        keyword_pool: list[int],
        keyword_reward: float,
        eos_reward: float,
        prior_coef: float,
        prior_reward: str,
        train_prompts: np.ndarray | None = None,
    ):
        if len(keyword_pool) < num_keywords:
            raise TaskError(
                f"task {name} needs at least {num_keywords} candidate keywords, the vocabulary has {len(keyword_pool)}"
            )
        self.name, self.tokenizer, self.prior = name, tokenizer, prior
        self.prompt_len, self.max_steps = num_keywords, max_length
        self.keyword_pool = np.asarray(keyword_pool, dtype=np.int64)
        self.keyword_reward, self.eos_reward = keyword_reward, eos_reward
        self.prior_coef, self.prior_reward = prior_coef, prior_reward
        self.train_prompts = train_prompts

    def sample_prompts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.train_prompts is not None:
            return self.train_prompts[rng.integers(0, len(self.train_prompts), size=n)]
        # distinct keywords per prompt: argsort of uniform keys over the pool
        keys = rng.random((n, len(self.keyword_pool)))
        return self.keyword_pool[np.argsort(keys, axis=1)[:, : self.prompt_len]]

    def prompt_space_size(self) -> int:
        return len(self.keyword_pool) ** self.prompt_len

    def _first_hits(self, prompts: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(B, T) number of prompt keywords emitted at step t for the first time."""
        eq = actions[:, :, None] == prompts[:, None, :]  # (B, T, K)
        return (eq & (np.cumsum(eq, axis=1) == 1)).sum(-1)

    def episode_rewards(self, prompts, actions, lengths):
        T = actions.shape[1]
        alive = np.arange(T)[None, :] < lengths[:, None]
        r = self.keyword_reward * self._first_hits(prompts, actions) + self.eos_reward * (actions == EOS)
        if self.prior_coef and self.prior is not None:
            taken, best = self.prior.token_log_probs(prompts, actions)
            r = r + self.prior_coef * (taken - best if self.prior_reward == "gap" else taken)
        return (r * alive).astype(np.float32)

    def rewards(self, prompts, actions, t):
        lengths = np.full(len(prompts), t + 1)
        return self.episode_rewards(prompts, actions[:, : t + 1], lengths)[:, t]

    def success(self, prompts, actions, lengths):
        if self.keyword_reward == 0:
            return None
        ended = actions[np.arange(len(lengths)), lengths - 1] == EOS
        return ended & (self.keyword_coverage(prompts, actions, lengths) == 1.0)

    def keyword_coverage(self, prompts, actions, lengths) -> np.ndarray:
        alive = np.arange(actions.shape[1])[None, :] < lengths[:, None]
        present = ((actions[:, :, None] == prompts[:, None, :]) & alive[:, :, None]).any(1)  # (B, K)
        return present.mean(1)

    def text_metrics(self, prompts, actions, lengths) -> dict[str, float]:
        """keyword_coverage, prior_perplexity (exp of the mean negative log p under the prior, EOS included) and
        distinct_2 (distinct bigrams / bigrams over all generations)."""
        alive = np.arange(actions.shape[1])[None, :] < lengths[:, None]
        out = {"keyword_coverage": float(self.keyword_coverage(prompts, actions, lengths).mean())}
        if self.prior is not None:
            taken, _ = self.prior.token_log_probs(prompts, actions)
            out["prior_perplexity"] = float(np.exp(-(taken * alive).sum() / alive.sum()))
        bigrams = [tuple(row[t : t + 2]) for row, n in zip(actions, lengths) for t in range(int(n) - 1)]
        out["distinct_2"] = len(set(bigrams)) / max(1, len(bigrams))
        return out
