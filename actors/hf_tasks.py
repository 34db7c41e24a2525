"""Text tasks on a Hugging Face model's subword tokens, rewarded on decoded text.

- `keywords`: the prompt asks for a sentence with some words; `keyword_reward` when each first appears as a whole
  word (at the token that completes it), `eos_reward` for ending, plus the fluency term.
- `fluency`: the fluency term alone (plus EOS), on the same prompts.
- `module:function`: a user's reward function `fn(prompt: str, generated: str) -> float`, called after every token
  with the decoded prompt and the text generated so far, on `fluency`'s prompts (or task.prompts_file), plus EOS
  and the fluency term.
- `lipogram`: the prompt asks for one sentence about a topic; `banned_reward` for each generated token whose text
  holds a letter of `banned`, `eos_reward` for ending after at least `min_words` words and -`eos_reward` for ending
  before (else the cheapest way to avoid a letter is to stop), plus the fluency term. A generation succeeds when it
  has no banned letter and at least `min_words` words.
The fluency term is prior_coef times log p(a|s) ("logp") or log p(a|s) - max log p(.|s) ("gap") under the frozen
warm-start model (actors/text_tasks.PriorModel).

Prompts are (B, P) ids right-padded with PROMPT_PAD. Imports torch only through the prior; no ray.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from actors.hf_text import (
    PROMPT_PAD,
    TOPIC_PROMPT,
    HFTokenizer,
    count_words,
    keywords_prompt,
    pad_prompts,
    prompt_keywords,
    whole_word_spans,
)
from actors.tasks import Task, TaskError, call_reward_fn

HF_TASKS = ("keywords", "fluency", "lipogram")


class HFTextTask(Task):
    def __init__(
        self,
        name: str,
        tokenizer: HFTokenizer,
        prior,
        pool: list[str],
        num_keywords: int,
        max_length: int,
        max_prompt_tokens: int,
        context: int | None,
        keyword_reward: float = 1.0,
        eos_reward: float = 1.0,
        prior_coef: float = 0.5,
        prior_reward: str = "gap",
        banned: str = "e",
        banned_reward: float = -1.0,
        min_words: int = 4,
        reward_fn: Callable[[str, str], float] | None = None,
    ):
        if name not in HF_TASKS and reward_fn is None:
            raise TaskError(f"task {name!r} does not run on a Hugging Face model; choose one of {', '.join(HF_TASKS)}")
        need = num_keywords if name != "lipogram" else 1
        if len(pool) < need:
            raise TaskError(f"task {name} needs at least {need} candidate words, the corpus gives {len(pool)}")
        self.name, self.tokenizer, self.prior = name, tokenizer, prior
        self.pool, self.num_keywords = list(pool), num_keywords
        self.max_steps, self.prompt_len, self.context = max_length, max_prompt_tokens, context
        self.keyword_reward = keyword_reward if name == "keywords" else 0.0
        self.eos_reward, self.prior_coef, self.prior_reward = eos_reward, prior_coef, prior_reward
        self.banned, self.banned_reward, self.min_words = banned.lower(), banned_reward, min_words
        self.reward_fn = reward_fn
        self.train_prompts: np.ndarray | None = None
        self._encode = lru_cache(maxsize=65536)(self._encode_text)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    # ----- prompts -----
    def prompt_text(self, words: list[str]) -> str:
        return TOPIC_PROMPT.format(topic=words[0]) if self.name == "lipogram" else keywords_prompt(words)

    def _encode_text(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode_prompt(text))

    def encode_prompts(self, lines: list[str], source: str) -> np.ndarray:
        """(N, prompt_len) ids of prompt texts (chat template applied), right-padded with PROMPT_PAD."""
        rows = []
        for n, line in enumerate(lines, 1):
            text = line.strip()
            ids = self._encode(text)
            if self.context is not None and len(ids) + self.max_steps > self.context:
                raise TaskError(
                    f"{source} line {n} ({text[:60]!r}) has {len(ids)} tokens; with task.max_length="
                    f"{self.max_steps} new tokens it is longer than the model's context of {self.context} positions"
                )
            if len(ids) > self.prompt_len:
                raise TaskError(
                    f"{source} line {n} ({text[:60]!r}) has {len(ids)} tokens, more than task.max_prompt_tokens="
                    f"{self.prompt_len}"
                )
            rows.append(ids)
        return pad_prompts(rows, self.prompt_len)

    def sample_prompts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.train_prompts is not None:
            return self.train_prompts[rng.integers(0, len(self.train_prompts), size=n)]
        k = 1 if self.name == "lipogram" else self.num_keywords
        picks = np.argsort(rng.random((n, len(self.pool))), axis=1)[:, :k]  # distinct words per prompt
        texts = [self.prompt_text([self.pool[j] for j in row]) for row in picks]
        return self.encode_prompts(texts, "a sampled prompt")

    def prompt_space_size(self) -> int:
        return len(self.pool) ** (1 if self.name == "lipogram" else self.num_keywords)

    # ----- text of a generation -----
    def _texts(self, actions: np.ndarray, lengths: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
        """Each generation's text (its tokens' texts joined) and the character offset where each token ends."""
        pieces = self.tokenizer.pieces()
        texts, ends = [], []
        for row, n in zip(actions, lengths):
            parts = [pieces[a] if 0 <= a < len(pieces) else "" for a in row[: int(n)]]
            texts.append("".join(parts))
            ends.append(np.cumsum([len(p) for p in parts]))
        return texts, ends

    def keywords_of(self, prompts: np.ndarray) -> list[list[str]]:
        return [prompt_keywords(self.tokenizer.decode(row[row != PROMPT_PAD])) for row in prompts]

    def _keyword_hits(self, prompts, actions, lengths) -> tuple[np.ndarray, np.ndarray]:
        """(B, T) keywords completed at step t for the first time, and (B,) share of keywords present."""
        texts, ends = self._texts(actions, lengths)
        hits = np.zeros(actions.shape, dtype=np.float32)
        coverage = np.zeros(len(prompts))
        for i, kws in enumerate(self.keywords_of(prompts)):
            found = 0
            for kw in kws:
                spans = whole_word_spans(texts[i], kw)
                if spans:
                    # credited at the token after the word (it shows the word is whole), or at the last token
                    found += 1
                    t = int(np.searchsorted(ends[i], spans[0][1], side="right"))
                    hits[i, min(t, len(ends[i]) - 1)] += 1
            coverage[i] = found / max(1, len(kws))
        return hits, coverage

    def _banned_tokens(self, actions: np.ndarray) -> np.ndarray:
        """(B, T) True where the token's text holds a banned letter."""
        table = self._banned_table()
        return table[np.clip(actions, 0, len(table) - 1)]

    def _banned_table(self) -> np.ndarray:
        if not hasattr(self, "_banned_ids"):
            letters = set(self.banned)
            self._banned_ids = np.array([bool(letters & set(p.lower())) for p in self.tokenizer.pieces()])
        return self._banned_ids

    # ----- rewards -----
    def episode_rewards(self, prompts, actions, lengths):
        T = actions.shape[1]
        alive = np.arange(T)[None, :] < lengths[:, None]
        r = self.eos_reward * (actions == self.tokenizer.eos_id)
        if self.name == "lipogram":  # ending before task.min_words words costs what ending after them pays
            texts, _ = self._texts(actions, lengths)
            short = np.array([count_words(t) < self.min_words for t in texts])
            r = np.where(short[:, None], -r, r) + self.banned_reward * self._banned_tokens(actions)
        if self.keyword_reward:
            r = r + self.keyword_reward * self._keyword_hits(prompts, actions, lengths)[0]
        if self.reward_fn is not None:
            r = r + self._user_rewards(prompts, actions, lengths)
        if self.prior_coef and self.prior is not None:
            taken, best = self.prior.token_log_probs(prompts, actions)
            r = r + self.prior_coef * (taken - best if self.prior_reward == "gap" else taken)
        return (r * alive).astype(np.float32)

    def _user_rewards(self, prompts, actions, lengths) -> np.ndarray:
        """fn(prompt, generated) after every token, on the prompt's text and the generation's text so far."""
        texts, ends = self._texts(actions, lengths)
        out = np.zeros(actions.shape, dtype=np.float32)
        for i, row in enumerate(prompts):
            prompt = self.tokenizer.decode(row[row != PROMPT_PAD])
            for t, end in enumerate(ends[i]):
                out[i, t] = call_reward_fn(self.reward_fn, self.name, prompt, texts[i][: int(end)])
        return out

    def rewards(self, prompts, actions, t):
        lengths = np.full(len(prompts), t + 1)
        return self.episode_rewards(prompts, actions[:, : t + 1], lengths)[:, t]

    # ----- evaluation -----
    def _ended(self, actions, lengths) -> np.ndarray:
        return actions[np.arange(len(lengths)), lengths - 1] == self.tokenizer.eos_id

    def constraint_success(self, actions, lengths) -> np.ndarray:
        alive = np.arange(actions.shape[1])[None, :] < lengths[:, None]
        clean = ~(self._banned_tokens(actions) & alive).any(1)
        texts, _ = self._texts(actions, lengths)
        return clean & (np.array([count_words(t) for t in texts]) >= self.min_words)

    def success(self, prompts, actions, lengths):
        if self.name == "lipogram":
            return self.constraint_success(actions, lengths)
        if self.name == "keywords":
            return self._ended(actions, lengths) & (self._keyword_hits(prompts, actions, lengths)[1] == 1.0)
        return None

    def text_metrics(self, prompts, actions, lengths) -> dict[str, float]:
        """keyword_coverage, prior_perplexity (EOS included), distinct_2 (distinct word bigrams / word bigrams of
        the decoded generations), mean_words; for lipogram also constraint_success."""
        alive = np.arange(actions.shape[1])[None, :] < lengths[:, None]
        texts, _ = self._texts(actions, lengths)
        words = [t.lower().split() for t in texts]
        bigrams = [tuple(w[j : j + 2]) for w in words for j in range(len(w) - 1)]
        out = {
            "keyword_coverage": float(self._keyword_hits(prompts, actions, lengths)[1].mean()),
            "distinct_2": len(set(bigrams)) / max(1, len(bigrams)),
            "mean_words": float(np.mean([count_words(t) for t in texts])),
        }
        if self.name == "lipogram":
            out["constraint_success"] = float(self.constraint_success(actions, lengths).mean())
        if self.prior is not None:
            taken, _ = self.prior.token_log_probs(prompts, actions)
            out["prior_perplexity"] = float(np.exp(-(taken * alive).sum() / alive.sum()))
        return out
