"""One text task over decoded text, for the word tokenizer and a Hugging Face tokenizer alike.

A task is a list of reward parts summed per token, and prompts made from a corpus's content words:
- `EndOfText`: `eos_reward` for ending with EOS.
- `MinWords`: an answer that ends, with EOS or at the step limit, with fewer than `min_words` words costs `penalty`;
  succeeds with at least `min_words` words.
- `KeywordHits`: `keyword_reward` the first time each prompt keyword appears as a whole word (at the token that
  shows it whole: its own with whole-word tokens, the next one with subwords); succeeds when every keyword appears
  and the text ended.
- `BannedLetters`: `banned_reward` for each token whose text holds a banned letter; succeeds with none.
- `Fluency`: `prior_coef` times log p(a|s) ("logp") or log p(a|s) - max log p(.|s) ("gap") under a frozen language
  model, the prior (Jaques et al. 2017). The gap costs nothing along the prior's own greedy sentence, so it does
  not, as raw log p does, pay the policy to end every sentence early.
- `UserReward`: a user's `fn(prompt: str, generated: str) -> float` after every token, on decoded text.
- `SequenceReward`: users' sequence-level reward functions in TRL's signature, `fn(prompts, completions, **kwargs)
  -> list[float]`, called once per batch of finished episodes, weighted and summed, credited at each episode's last
  token; succeeds where the sum reaches a threshold.
- `SuccessBonus`: a reward at the last token of an episode that the other parts call a success.

The built-in tasks are compositions (`TEXT_TASKS`): `keywords` (a sentence with the prompt's words), `fluency`
(the prior alone), `lipogram` (one sentence about a topic without a letter) and `custom` (the prompt file's
prompts, scored by sequence-level reward functions alone). A task succeeds when every part
that has a notion of success succeeds. Prompts are (B, P) ids, right-padded with PROMPT_PAD where the tokenizer
reads instructions of any length. Imports torch only through the prior; no ray.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from actors.tasks import Reference, Task, TaskError, call_reward_fn
from actors.text import PromptRecord, TextError, count_words, whole_word_spans
from replay.episodes import PROMPT_PAD

KEYWORDS_PROMPT = "Write a sentence with the words {keywords}."
TOPIC_PROMPT = "Write one sentence about {keywords}."
BARE_PROMPT = "{keywords}"  # the word tokenizer's prompts: the words themselves


class PriorModel:
    """A frozen network read as a language model: its outputs at each position are next-token logits."""

    def __init__(self, net):
        self.net = net.eval().requires_grad_(False)

    def token_log_probs(self, prompts: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(a_t | s_t), max_a log p(a | s_t)), each (B, T), from one causal pass over whole sequences."""
        import torch

        with torch.no_grad():
            logits = self.net(torch.as_tensor(prompts), torch.as_tensor(actions[:, :-1]))  # (B, T, V)
            logp = torch.log_softmax(logits.float(), dim=-1)
            taken = logp.gather(-1, torch.as_tensor(actions)[..., None]).squeeze(-1)
        return taken.numpy(), logp.max(-1).values.numpy()


@dataclass
class Prompts:
    """Prompt text from `words` words of `pool`: a template with a {keywords} slot, the words joined by `sep`.
    `names_keywords`: the words are keywords the generation should hold (a topic is not)."""

    template: str
    pool: list[str]
    words: int
    sep: str = ", "
    names_keywords: bool = True

    def text(self, chosen: Sequence[str]) -> str:
        return self.template.format(keywords=self.sep.join(chosen))

    def keywords(self, text: str) -> list[str]:
        """The keywords a prompt names, found in its decoded text (a chat template around it is fine)."""
        if not self.names_keywords:
            return []
        before, after = self.template.split("{keywords}")
        start = text.find(before)
        if start < 0:
            return []
        start += len(before)
        end = text.find(after, start) if after else len(text)
        if end < 0:
            return []
        return [w.strip().lower() for w in text[start:end].split(self.sep.strip() or None) if w.strip()]

    def space_size(self) -> int:
        return len(self.pool) ** self.words


class Episodes:
    """Finished (or partial) episodes as the reward parts read them; the decoded text is computed once."""

    def __init__(self, task: TextTask, prompts, actions, lengths, reference: Reference | None = None):
        self.task, self.prompts, self.actions, self.lengths = task, prompts, actions, lengths
        self._reference = reference
        self.alive = np.arange(actions.shape[1])[None, :] < lengths[:, None]
        self.eos = actions == task.tokenizer.eos_id
        self.last = np.zeros(actions.shape, dtype=bool)  # each episode's last token
        self.last[np.arange(len(lengths)), np.maximum(lengths, 1) - 1] = True
        self.memo: dict[int, np.ndarray] = {}  # what a part computed once for both its rewards and its success

    @cached_property
    def _text(self) -> tuple[list[str], list[np.ndarray]]:
        pieces = self.task.tokenizer.pieces()
        texts, ends = [], []
        for row, n in zip(self.actions, self.lengths):
            parts = [pieces[a] if 0 <= a < len(pieces) else "" for a in row[: int(n)]]
            texts.append("".join(parts))
            ends.append(np.cumsum([len(p) for p in parts]))
        return texts, ends

    @property
    def texts(self) -> list[str]:
        """Each generation's text: its tokens' texts joined."""
        return self._text[0]

    @property
    def ends(self) -> list[np.ndarray]:
        """The character offset where each token of a generation ends."""
        return self._text[1]

    @cached_property
    def prior_log_probs(self) -> Reference:
        """The prior's log-probs along the episodes: the acting network's, where it computed them in its own pass
        (a frozen trunk's reference top), else from the prior's pass over the whole sequences."""
        if self._reference is not None:
            return self._reference
        return Reference(*self.task.prior.token_log_probs(self.prompts, self.actions))

    @cached_property
    def word_counts(self) -> np.ndarray:
        return np.array([count_words(t) for t in self.texts])

    @cached_property
    def ended(self) -> np.ndarray:
        return self.actions[np.arange(len(self.lengths)), self.lengths - 1] == self.task.tokenizer.eos_id

    @cached_property
    def prompt_texts(self) -> list[str]:
        return [self.task.tokenizer.decode(row[row != PROMPT_PAD]) for row in self.prompts]

    @cached_property
    def keyword_hits(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, T) keywords made whole at step t for the first time, and (B,) share of keywords present."""
        hits = np.zeros(self.actions.shape, dtype=np.float32)
        coverage = np.zeros(len(self.prompts))
        side = "left" if self.task.tokenizer.whole_word_tokens else "right"  # its own token, or the one after
        for i, text in enumerate(self.prompt_texts):
            kws = self.task.prompts.keywords(text)
            found = 0
            for kw in kws:
                spans = whole_word_spans(self.texts[i], kw)
                if spans:
                    found += 1
                    t = int(np.searchsorted(self.ends[i], spans[0][1], side=side))
                    hits[i, min(t, len(self.ends[i]) - 1)] += 1
            coverage[i] = found / max(1, len(kws))
        return hits, coverage


class RewardPart:
    """One term of a text task's reward; `success` is None when the part has no notion of success."""

    def rewards(self, ep: Episodes) -> np.ndarray:
        raise NotImplementedError

    def success(self, ep: Episodes) -> np.ndarray | None:
        return None


@dataclass
class EndOfText(RewardPart):
    reward: float

    def rewards(self, ep):
        return self.reward * ep.eos


@dataclass
class MinWords(RewardPart):
    min_words: int
    penalty: float

    def rewards(self, ep):
        # charged where the answer ends: its EOS, or its last token at the step limit (an answer that never ends,
        # "1111...", is no cheaper than one that stops)
        full = ep.last & (ep.lengths >= ep.task.max_steps)[:, None]
        return -self.penalty * ((ep.eos | full) & (ep.word_counts < self.min_words)[:, None])

    def success(self, ep):
        return ep.word_counts >= self.min_words


@dataclass
class KeywordHits(RewardPart):
    reward: float

    def rewards(self, ep):
        return self.reward * ep.keyword_hits[0]

    def success(self, ep):
        return ep.ended & (ep.keyword_hits[1] == 1.0)


class BannedLetters(RewardPart):
    def __init__(self, letters: str, reward: float, pieces: list[str]):
        self.letters, self.reward = letters.lower(), reward
        banned = set(self.letters)
        self.table = np.array([bool(banned & set(p.lower())) for p in pieces])  # (V,) token holds a banned letter

    def banned(self, actions: np.ndarray) -> np.ndarray:
        return self.table[np.clip(actions, 0, len(self.table) - 1)]

    def rewards(self, ep):
        return self.reward * self.banned(ep.actions)

    def success(self, ep):
        return ~(self.banned(ep.actions) & ep.alive).any(1)


@dataclass
class Fluency(RewardPart):
    """The task's prior's log-probs (Episodes.prior_log_probs), weighted."""

    coef: float
    mode: str  # "gap" or "logp"

    def rewards(self, ep):
        taken, best = ep.prior_log_probs
        return self.coef * (taken - best if self.mode == "gap" else taken)


@dataclass
class UserReward(RewardPart):
    fn: Callable[[str, str], float]
    name: str

    def rewards(self, ep):
        out = np.zeros(ep.actions.shape, dtype=np.float32)
        for i, prompt in enumerate(ep.prompt_texts):
            for t, end in enumerate(ep.ends[i]):
                out[i, t] = call_reward_fn(self.fn, self.name, prompt, ep.texts[i][: int(end)])
        return out


@dataclass
class SuccessBonus(RewardPart):
    """`reward` at the last token of each episode that every part of `judges` calls a success."""

    reward: float
    judges: list[RewardPart]

    def rewards(self, ep):
        verdicts = [j.success(ep) for j in self.judges]
        return self.reward * (np.logical_and.reduce(verdicts)[:, None] & ep.last)


class SequenceReward(RewardPart):
    """Sequence-level reward functions as TRL's GRPOTrainer takes them: `fn(prompts=..., completions=..., **kwargs)
    -> list[float]`, called once per batch of episodes with every prompt as its file gave it (text, or chat
    messages: then each completion is [{"role": "assistant", "content": text}]), the prompt records' other fields
    and `completion_ids` as keyword lists. The weighted sum is credited at each episode's last token; an episode
    succeeds where it reaches `success_at`. A None score (a function that does not apply) counts 0."""

    def __init__(self, fns: list[tuple[str, Callable]], weights: list[float], success_at: float):
        self.fns, self.weights, self.success_at = fns, weights, success_at

    def scores(self, ep: Episodes) -> np.ndarray:
        if id(self) not in ep.memo:
            ep.memo[id(self)] = self._score(ep)
        return ep.memo[id(self)]

    def _score(self, ep: Episodes) -> np.ndarray:
        records = [ep.task.record_of(row, text) for row, text in zip(ep.prompts, ep.prompt_texts)]
        decode = ep.task.tokenizer.decode
        ids = [[int(a) for a in row[: int(n)]] for row, n in zip(ep.actions, ep.lengths)]
        texts = [decode(row) for row in ids]
        completions = [
            [{"role": "assistant", "content": t}] if isinstance(r.prompt, list) else t for r, t in zip(records, texts)
        ]
        columns = sorted({k for r in records for k in r.columns})
        kwargs = {k: [r.columns.get(k) for r in records] for k in columns} | {"completion_ids": ids}
        total = np.zeros(len(records))
        for (name, fn), weight in zip(self.fns, self.weights):
            total += weight * call_sequence_reward(fn, name, [r.prompt for r in records], completions, kwargs)
        return total

    def rewards(self, ep):
        return self.scores(ep)[:, None] * ep.last

    def success(self, ep):
        return self.scores(ep) >= self.success_at


def call_sequence_reward(fn: Callable, name: str, prompts: list, completions: list, kwargs: dict) -> np.ndarray:
    """One sequence-level reward function on a batch; whatever it raises or returns that is not one finite number
    (or None) per completion becomes one sentence (a TaskError) naming the function."""
    try:
        out = fn(prompts=prompts, completions=completions, **kwargs)
    except Exception as err:  # a user's function: report it in one sentence, whatever it raised
        raise TaskError(f"reward function {name} raised {type(err).__name__}: {err}") from None
    try:
        values = [0.0 if v is None else float(v) for v in out]
    except (TypeError, ValueError):
        raise TaskError(f"reward function {name} must return a list of numbers, got {type(out).__name__}") from None
    if len(values) != len(completions):
        raise TaskError(
            f"reward function {name} returned {len(values)} scores for a batch of {len(completions)} completions"
        )
    bad = [v for v in values if not np.isfinite(v)]
    if bad:
        raise TaskError(f"reward function {name} returned {bad[0]} (every score must be a finite number)")
    return np.asarray(values)


class TextTask(Task):
    """Prompts from `prompts`, rewards the sum of `parts`, episodes of at most `max_length` tokens; prompts of at
    most `prompt_len` tokens (exactly that many with bare prompts), within the model's `context` positions."""

    def __init__(
        self,
        name: str,
        tokenizer,
        prior: PriorModel | None,
        parts: list[RewardPart],
        prompts: Prompts,
        max_length: int,
        prompt_len: int,
        context: int | None = None,
    ):
        need = prompts.words
        if len(prompts.pool) < need:
            raise TaskError(f"task {name} needs at least {need} candidate words, the corpus gives {len(prompts.pool)}")
        self.name, self.tokenizer, self.prior, self.parts, self.prompts = name, tokenizer, prior, parts, prompts
        self.max_steps, self.context = max_length, context
        self.prompt_len = prompts.words if tokenizer.bare_prompts else prompt_len
        self.train_prompts: np.ndarray | None = None
        self.records: dict[tuple[int, ...], PromptRecord] = {}  # the prompt files' prompts, by their ids
        self._encode = lru_cache(maxsize=65536)(self._encode_text)

    # ----- prompts -----
    def _encode_text(self, key: str) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode_prompt(json.loads(key) if key.startswith("[") else key))

    def encode_prompts(self, lines: list[str | list[dict]], source: str, records: list | None = None) -> np.ndarray:
        """(N, prompt_len) ids of prompt texts or chat messages (chat template applied), right-padded with
        PROMPT_PAD. `records`: the prompt file's records (actors/text.py PromptRecord), kept for sequence-level
        reward functions, which receive each prompt as the file gave it."""
        rows = []
        for n, line in enumerate(lines, 1):
            text = line.strip() if isinstance(line, str) else json.dumps(line)
            try:
                ids = self._encode(text)
            except TextError as err:
                raise TaskError(f"{source} line {n} ({text!r}): {err}") from None
            if self.context is not None and len(ids) + self.max_steps > self.context:
                raise TaskError(
                    f"{source} line {n} ({text[:60]!r}) has {len(ids)} tokens; with task.max_length="
                    f"{self.max_steps} new tokens it is longer than the model's context of {self.context} positions"
                )
            if self.tokenizer.bare_prompts and len(ids) != self.prompt_len:
                raise TaskError(
                    f"{source} line {n} ({text!r}) has {len(ids)} tokens; task {self.name} takes {self.prompt_len}"
                )
            if len(ids) > self.prompt_len:
                raise TaskError(
                    f"{source} line {n} ({text[:60]!r}) has {len(ids)} tokens, more than task.prompt_len="
                    f"{self.prompt_len}"
                )
            rows.append(ids)
            if records is not None:
                self.records[ids] = records[n - 1]
        out = np.full((len(rows), self.prompt_len), PROMPT_PAD, dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    def sample_prompts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.train_prompts is not None:
            return self.train_prompts[rng.integers(0, len(self.train_prompts), size=n)]
        pool = self.prompts.pool
        picks = np.argsort(rng.random((n, len(pool))), axis=1)[:, : self.prompts.words]  # distinct words per prompt
        return self.encode_prompts([self.prompts.text([pool[j] for j in row]) for row in picks], "a sampled prompt")

    def record_of(self, row: np.ndarray, text: str) -> PromptRecord:
        """A prompt's record from its file, or its decoded text (`text`) where it came from none."""
        return self.records.get(tuple(int(i) for i in row[row != PROMPT_PAD]), None) or PromptRecord(text)

    def prompt_space_size(self) -> int:
        return self.prompts.space_size()

    def keywords_of(self, prompts: np.ndarray) -> list[list[str]]:
        return [self.prompts.keywords(self.tokenizer.decode(row[row != PROMPT_PAD])) for row in prompts]

    # ----- rewards -----
    def episode_rewards(self, prompts, actions, lengths, reference=None):
        ep = Episodes(self, prompts, actions, lengths, reference)
        r = np.zeros(actions.shape, dtype=np.float64)
        for part in self.parts:
            r = r + part.rewards(ep)
        return (r * ep.alive).astype(np.float32)

    def rewards(self, prompts, actions, t):
        lengths = np.full(len(prompts), t + 1)
        return self.episode_rewards(prompts, actions[:, : t + 1], lengths)[:, t]

    # ----- evaluation -----
    def success(self, prompts, actions, lengths):
        return self._success(Episodes(self, prompts, actions, lengths))

    def _success(self, ep: Episodes) -> np.ndarray | None:
        verdicts = [s for s in (part.success(ep) for part in self.parts) if s is not None]
        return np.logical_and.reduce(verdicts) if verdicts else None

    def keyword_coverage(self, prompts, actions, lengths) -> np.ndarray:
        return Episodes(self, prompts, actions, lengths).keyword_hits[1]

    def text_metrics(self, prompts, actions, lengths) -> dict[str, float]:
        """keyword_coverage, prior_perplexity (EOS included), distinct_2 (distinct word bigrams / word bigrams of
        the decoded generations), mean_words; with a banned letter also constraint_success (the task's success)."""
        ep = Episodes(self, prompts, actions, lengths)
        tokens = [t.lower().split() for t in ep.texts]
        bigrams = [tuple(w[j : j + 2]) for w in tokens for j in range(len(w) - 1)]
        out = {
            "keyword_coverage": float(ep.keyword_hits[1].mean()),
            "distinct_2": len(set(bigrams)) / max(1, len(bigrams)),
            "mean_words": float(ep.word_counts.mean()),
        }
        if any(isinstance(p, BannedLetters) for p in self.parts):
            out["constraint_success"] = float(self._success(ep).mean())  # the decoded text read once
        if self.prior is not None:
            taken, _ = self.prior.token_log_probs(prompts, actions)
            out["prior_perplexity"] = float(np.exp(-(taken * ep.alive).sum() / ep.alive.sum()))
        return out


TEXT_TASKS = ("keywords", "fluency", "lipogram", "custom")


def text_task(
    name: str,
    tokenizer,
    prior: PriorModel | None,
    pool: list[str],
    *,
    num_keywords: int = 2,
    max_length: int = 16,
    prompt_len: int = 32,
    context: int | None = None,
    keyword_reward: float = 1.0,
    eos_reward: float = 1.0,
    prior_coef: float = 0.5,
    prior_reward: str = "gap",
    banned: str = "e",
    banned_reward: float = -1.0,
    min_words: int = 4,
    reward_fn: Callable[[str, str], float] | None = None,
    sequence_reward: SequenceReward | None = None,
) -> TextTask:
    """A built-in text task (`TEXT_TASKS`), or a user's reward function `name` = module:function, as reward parts
    and prompts over the words of `pool`. User functions read `keywords`' prompts. `sequence_reward`: users'
    sequence-level reward functions, added to any of them (`custom` has nothing else).

    `lipogram` pays for a success, never for stopping: each token holding a banned letter costs `banned_reward`,
    a success (at least `min_words` words, no banned letter) earns `eos_reward` at its last token, and an answer
    that ends (with EOS, or at the step limit) with fewer than `min_words` words costs what `max_length` banned
    tokens would, so neither a shorter answer nor one that never ends is cheaper than a sentence."""
    if name not in TEXT_TASKS and reward_fn is None:
        raise TaskError(f"unknown text task {name!r}; choose one of {', '.join(TEXT_TASKS)} or give module:function")
    if name == "custom" and sequence_reward is None:
        raise TaskError("task custom is scored by task.reward_fn alone: give task.reward_fn=module:function")
    bare = tokenizer.bare_prompts
    keyword_prompts = Prompts(BARE_PROMPT if bare else KEYWORDS_PROMPT, pool, num_keywords, " " if bare else ", ")
    parts: list[RewardPart] = [] if name in ("lipogram", "custom") else [EndOfText(eos_reward)]
    prompts = keyword_prompts
    if reward_fn is not None:
        parts.append(UserReward(reward_fn, name))
    elif name == "keywords":
        parts.append(KeywordHits(keyword_reward))
    elif name in ("lipogram", "custom"):
        prompts = Prompts(BARE_PROMPT if bare else TOPIC_PROMPT, pool, 1, names_keywords=False)
    if name == "lipogram":
        judges = [MinWords(min_words, abs(banned_reward) * max_length)]
        judges.append(BannedLetters(banned, banned_reward, tokenizer.pieces()))
        parts += [*judges, SuccessBonus(eos_reward, judges)]
    if sequence_reward is not None:
        parts.append(sequence_reward)
    if prior is not None and prior_coef:
        parts.append(Fluency(prior_coef, prior_reward))
    return TextTask(name, tokenizer, prior, parts, prompts, max_length, prompt_len, context)


class SentencePrompts:
    """Pretraining's prompt text for a sentence, in the form the text task shows later: a topic it is about
    (`topic_frac` of them, instructions only), keywords it contains (`own_frac`), or `k` random keywords of
    `pool`. Bare prompts are always `k` words, so they have no topic prompts."""

    TOPIC_FRAC = 0.25

    def __init__(self, pool: list[str], k: int, own_frac: float, rng: np.random.Generator, bare: bool):
        self.pool, self.k, self.own_frac, self.rng = pool, k, own_frac, rng
        self.keywords, self.sep = (BARE_PROMPT, " ") if bare else (KEYWORDS_PROMPT, ", ")
        self.topic_frac = 0.0 if bare else self.TOPIC_FRAC

    @classmethod
    def of(cls, cfg, pool: list[str], rng: np.random.Generator, bare: bool) -> SentencePrompts:
        """From a tokenq Config's task.num_keywords and pretrain.keyword_prompt_frac."""
        k = cfg.task.num_keywords
        if len(pool) < k:
            raise TaskError(f"the corpus has {len(pool)} content words, fewer than task.num_keywords={k}")
        return cls(pool, k, cfg.pretrain.keyword_prompt_frac, rng, bare)

    def text(self, own: Sequence[str]) -> str:
        """`own`: the sentence's content words."""
        rng, k = self.rng, self.k
        if self.topic_frac and rng.random() < self.topic_frac:
            return TOPIC_PROMPT.format(keywords=rng.choice(list(own) or self.pool))
        if len(own) >= k and rng.random() < self.own_frac:
            chosen = list(rng.permutation(own)[:k])
        else:
            chosen = list(rng.choice(self.pool, size=k, replace=False))
        return self.keywords.format(keywords=self.sep.join(chosen))


def keywords_prompt(keywords: Sequence[str]) -> str:
    """The instruction prompt of a `keywords` task on a Hugging Face tokenizer."""
    return KEYWORDS_PROMPT.format(keywords=", ".join(keywords))
