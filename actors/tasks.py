"""Text tasks as MDPs: prompts, per-step rewards, the terminal rule, success, and (when small) every state.

State s_t = (prompt, a_0..a_{t-1}); action a_t = the next token; the episode ends at EOS or after `max_steps`
tokens. Pure: imports neither ray nor torch.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import os
import sys
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from actors.tokenizer import EOS, CharTokenizer


class Reference(NamedTuple):
    """A reference model's log-probs along episodes, each (B, T): of the token taken, and the best token's."""

    taken: np.ndarray
    best: np.ndarray


class TaskError(ValueError):
    """A task could not be built or its reward could not be computed; the message is one sentence for users."""


class Task:
    """Base class. Subclasses set `name`, `tokenizer`, `prompt_len`, `max_steps` and implement `rewards`."""

    name: str = "task"
    tokenizer: CharTokenizer
    prompt_len: int
    max_steps: int
    prior = None  # a text task's frozen language model (actors/text_task.py PriorModel); None elsewhere

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def sample_prompts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, prompt_len) int64 prompt token ids."""
        letters = np.asarray(self.tokenizer.letter_ids, dtype=np.int64)
        return letters[rng.integers(0, len(letters), size=(n, self.prompt_len))]

    def rewards(self, prompts: np.ndarray, actions: np.ndarray, t: int) -> np.ndarray:
        """(B,) float32 reward for emitting actions[:, t] after actions[:, :t], given prompts (B, P)."""
        raise NotImplementedError

    def episode_rewards(
        self, prompts: np.ndarray, actions: np.ndarray, lengths: np.ndarray, reference: Reference | None = None
    ) -> np.ndarray:
        """(B, T) rewards of finished episodes, 0 past each one's length. `reference`: the acting network's own
        reference-model log-probs of the episodes, where it computed them (a text task's prior then reads them
        instead of running its own pass)."""
        out = np.zeros(actions.shape, dtype=np.float32)
        for t in range(actions.shape[1]):
            rows = np.flatnonzero(lengths > t)
            out[rows, t] = self.rewards(prompts[rows], actions[rows], t)
        return out

    def success(self, prompts: np.ndarray, actions: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
        """(B,) bool, or None when the task has no notion of success."""
        return None

    def text_metrics(self, prompts: np.ndarray, actions: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
        """Measures of generated text beyond success and return (text tasks); none by default."""
        return {}

    def optimal_return(self, prompts: np.ndarray) -> np.ndarray | None:
        """(B,) best undiscounted return per prompt, or None when unknown."""
        return None

    def prompt_space_size(self) -> int:
        return len(self.tokenizer.letter_ids) ** self.prompt_len

    def encode_prompts(self, lines: list[str], source: str, records: list | None = None) -> np.ndarray:
        """(N, prompt_len) ids of prompt lines from `source` (a file name, for the error message); `records` (a
        prompt file's other fields) are for text tasks' reward functions."""
        rows = []
        for n, line in enumerate(lines, 1):
            if not isinstance(line, str):
                raise TaskError(f"{source} line {n} holds chat messages, which task {self.name} cannot read")
            text = line.strip()
            try:
                ids = self.tokenizer.encode(text)
            except ValueError as err:
                raise TaskError(f"{source} line {n} ({text!r}): {err}") from None
            if len(ids) != self.prompt_len:
                raise TaskError(
                    f"{source} line {n} ({text!r}) has {len(ids)} tokens; task {self.name} takes {self.prompt_len}"
                )
            rows.append(ids)
        return np.array(rows, dtype=np.int64)

    def all_prompts(self) -> np.ndarray:
        """Every prompt, for tasks whose prompt space is small enough to enumerate."""
        letters = self.tokenizer.letter_ids
        return np.array(list(itertools.product(letters, repeat=self.prompt_len)), dtype=np.int64)

    @property
    def enumerable(self) -> bool:
        """True when every state (prompt, prefix) can be listed, so exact Q* exists by backward induction."""
        return False


class TargetTask(Task):
    """The answer is a fixed function of the prompt: reward +1 for each step whose token equals target[t].

    The target sequence is the answer followed by EOS, so EOS at exactly step len(answer) earns +1 too
    (docs/design.md's `reverse`). Rewards do not depend on earlier mistakes; the episode still ends at the first EOS.
    """

    def answers(self, prompts: np.ndarray) -> list[list[int]]:
        raise NotImplementedError

    def targets(self, prompts: np.ndarray) -> np.ndarray:
        """(B, max_steps) target token per step: answer, EOS, then -1 (matches no token)."""
        out = np.full((len(prompts), self.max_steps), -1, dtype=np.int64)
        for i, ans in enumerate(self.answers(prompts)):
            seq = list(ans) + [EOS]
            out[i, : len(seq)] = seq
        return out

    def rewards(self, prompts: np.ndarray, actions: np.ndarray, t: int) -> np.ndarray:
        return (actions[:, t] == self.targets(prompts)[:, t]).astype(np.float32)

    def episode_rewards(self, prompts, actions, lengths, reference=None):
        T = actions.shape[1]
        alive = np.arange(T)[None, :] < lengths[:, None]
        return ((actions == self.targets(prompts)[:, :T]) & alive).astype(np.float32)

    def success(self, prompts: np.ndarray, actions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        targets = self.targets(prompts)
        target_len = (targets >= 0).sum(1)
        steps = np.arange(actions.shape[1])[None, :]
        match = (actions[:, : self.max_steps] == targets[:, : actions.shape[1]]) | (steps >= target_len[:, None])
        return (lengths == target_len) & match.all(1)

    def optimal_return(self, prompts: np.ndarray) -> np.ndarray:
        return (self.targets(prompts) >= 0).sum(1).astype(np.float64)


class LetterTask(TargetTask):
    """A public base for tasks over a few letters: prompts of `prompt_len` letters of `alphabet` (a CharTokenizer:
    PAD, BOS, EOS, SEP, then one token per letter), at most prompt_len + extra_steps generated tokens. Subclasses
    give `name` and `answers(prompts)`."""

    def __init__(self, prompt_len: int, alphabet: str, extra_steps: int = 2):
        if prompt_len < 1:
            raise TaskError(f"task.prompt_len must be at least 1, got {prompt_len}")
        self.tokenizer = CharTokenizer(alphabet)
        self.prompt_len = prompt_len
        self.max_steps = prompt_len + extra_steps


class Reverse(LetterTask):
    """docs/design.md's benchmark: k letters a..h, answer = the prompt reversed, then EOS; at most k+2 steps."""

    name = "reverse"

    def __init__(self, prompt_len: int = 6):
        super().__init__(prompt_len, "abcdefgh")

    def answers(self, prompts):
        return [row[::-1].tolist() for row in prompts]

    def targets(self, prompts):
        # Vectorised: this runs once per rollout step, so skip the per-row Python loop.
        out = np.full((len(prompts), self.max_steps), -1, dtype=np.int64)
        out[:, : self.prompt_len] = prompts[:, ::-1]
        out[:, self.prompt_len] = EOS
        return out


class Copy(LetterTask):
    name = "copy"

    def __init__(self, prompt_len: int = 6):
        super().__init__(prompt_len, "abcdefgh")

    def answers(self, prompts):
        return [row.tolist() for row in prompts]


class Sort(LetterTask):
    name = "sort"

    def __init__(self, prompt_len: int = 6):
        super().__init__(prompt_len, "abcdefgh")

    def answers(self, prompts):
        return [sorted(row.tolist()) for row in prompts]


class Tiny(Reverse):
    """Reverse over letters {a, b} with 2-letter prompts and at most 3 steps: 4 prompts x 31 states, so the
    exact Q* of every state comes from backward induction."""

    name = "tiny"

    def __init__(self, prompt_len: int = 2):
        LetterTask.__init__(self, prompt_len, "ab", extra_steps=1)

    @property
    def enumerable(self) -> bool:
        return True


class Add(TargetTask):
    """k-digit addition: prompt "ddd+ddd", answer the sum's digits without leading zeros, then EOS."""

    name = "add"

    def __init__(self, prompt_len: int = 2):
        if prompt_len < 1:
            raise TaskError(f"task.prompt_len (digits per operand) must be at least 1, got {prompt_len}")
        self.digits = prompt_len
        self.tokenizer = CharTokenizer("0123456789+")
        self.prompt_len = 2 * prompt_len + 1
        self.max_steps = prompt_len + 2  # at most k+1 answer digits, then EOS

    def sample_prompts(self, rng, n):
        digit_ids = np.asarray(self.tokenizer.encode("0123456789"))
        a = digit_ids[rng.integers(0, 10, size=(n, self.digits))]
        b = digit_ids[rng.integers(0, 10, size=(n, self.digits))]
        plus = np.full((n, 1), self.tokenizer.encode("+")[0])
        return np.concatenate([a, plus, b], axis=1).astype(np.int64)

    def prompt_space_size(self):
        return 100**self.digits

    def answers(self, prompts):
        out = []
        for row in prompts:
            a, b = self.tokenizer.decode(row).split("+")
            out.append(self.tokenizer.encode(str(int(a) + int(b))))
        return out


def call_reward_fn(fn: Callable[[str, str], float], name: str, prompt: str, generated: str) -> float:
    """A user's reward function on one (prompt, generated text) pair; whatever it raises or returns that is not a
    finite number becomes one sentence (a TaskError) naming the function and the prompt."""
    try:
        value = float(fn(prompt, generated))
    except Exception as err:  # a user's function: report it in one sentence, whatever it raised
        raise TaskError(f"reward function {name} raised {type(err).__name__}: {err} (prompt {prompt[:60]!r})") from None
    if not np.isfinite(value):
        raise TaskError(f"reward function {name} returned {value} for prompt {prompt[:60]!r}")
    return value


class RewardFunctionTask(Task):
    """A user reward function over letter prompts: `fn(prompt: str, generated: str) -> float`, called after every
    token with the text generated so far (the new token included). No notion of success."""

    def __init__(self, fn: Callable[[str, str], float], name: str, prompt_len: int = 6, alphabet: str = "abcdefgh"):
        self.fn = fn
        self.name = name
        self.tokenizer = CharTokenizer(alphabet)
        self.prompt_len = prompt_len
        self.max_steps = prompt_len + 2

    def rewards(self, prompts, actions, t):
        out = np.zeros(len(prompts), dtype=np.float32)
        for i in range(len(prompts)):
            prompt = self.tokenizer.decode(prompts[i])
            generated = self.tokenizer.decode(actions[i, : t + 1], skip_special=False)
            out[i] = call_reward_fn(self.fn, self.name, prompt, generated)
        return out


BUILTIN_TASKS: dict[str, type[Task]] = {
    "reverse": Reverse,
    "copy": Copy,
    "sort": Sort,
    "add": Add,
    "tiny": Tiny,
}


def load_attribute(name: str, what: str):
    """`module:attribute` imported (the working directory on the path, as with `python -m`), or one sentence."""
    module_name, _, attr = name.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise TaskError(f"cannot load {what} {name!r}: {err}") from None


def make_task(name: str, prompt_len: int = 0) -> Task:
    """A built-in task by name, or a user task from `module:attribute` (a Task subclass or a reward function)."""
    kwargs = {"prompt_len": prompt_len} if prompt_len else {}
    if name in BUILTIN_TASKS:
        return BUILTIN_TASKS[name](**kwargs)
    if ":" not in name:
        raise TaskError(f"unknown task {name!r}; choose one of {sorted(BUILTIN_TASKS)} or give module:attribute")
    obj = load_attribute(name, "task")
    if inspect.isclass(obj) and issubclass(obj, Task):
        return obj(**kwargs)
    if callable(obj):
        return RewardFunctionTask(obj, name=name, **kwargs)
    raise TaskError(f"task {name!r} is neither a Task subclass nor a reward function")


class PromptSource:
    """Training prompts from a seeded RNG, never one of the held-out evaluation prompts.

    When the prompt space is too small to hold out a separate set (the enumerable tasks), evaluation uses every
    prompt and training draws from all of them too.
    """

    def __init__(self, task: Task, seed: int, heldout: np.ndarray):
        self.task = task
        self.rng = np.random.default_rng(seed)
        small = task.prompt_space_size() <= 4 * len(heldout)
        self._heldout = set() if small else {row.tobytes() for row in heldout}

    def sample(self, n: int) -> np.ndarray:
        prompts = self.task.sample_prompts(self.rng, n)
        if self._heldout:
            keep = np.array([row.tobytes() not in self._heldout for row in prompts])
            while not keep.all():
                prompts[~keep] = self.task.sample_prompts(self.rng, int((~keep).sum()))
                keep = np.array([row.tobytes() not in self._heldout for row in prompts])
        return prompts


def heldout_prompts(task: Task, n: int, seed: int) -> np.ndarray:
    """The evaluation prompts: every prompt when there are at most n, else n distinct draws from `seed`."""
    if task.prompt_space_size() <= n:
        return task.all_prompts()
    rng = np.random.default_rng(seed)
    seen: dict[bytes, np.ndarray] = {}
    while len(seen) < n:
        for row in task.sample_prompts(rng, n):
            seen.setdefault(row.tobytes(), row)
    return np.stack(list(seen.values())[:n])
