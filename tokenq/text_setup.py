"""Building the text task from a config: its tokenizer and frozen prior (a `tokenq pretrain` run's word
vocabulary and network, or a Hugging Face model), the corpus and the keyword pool.

With init.from_run the trained network takes that run's model shape.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from actors.tasks import TaskError, load_attribute
from actors.text import TextError, WordTokenizer, content_words, load_corpus, rank_words, read_prompt_records
from actors.text_task import PriorModel, SequenceReward, TextTask, text_task
from learner.checkpoint import Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint
from learner.config import QNetConfig
from learner.model import QNetwork
from learner.qfunction import QFunction
from tokenq.config import Config, ConfigError


def corpus(cfg: Config) -> list[str]:
    """The corpus's sentences: `task.corpus`, or sentences drawn from the built-in grammar."""
    return load_corpus(cfg.task.corpus, cfg.task.corpus_sentences, cfg.train.seed)


def make_text_task(cfg: Config, tokenizer, prior: PriorModel | None, context: int | None = None) -> TextTask:
    """The configured text task on `tokenizer`: keywords and topics are the corpus's most frequent content words."""
    t = cfg.task
    if tokenizer.bare_prompts and t.prompt_len not in (0, t.num_keywords):
        raise ConfigError(
            f"task.prompt_len={t.prompt_len} does not apply: a word vocabulary's prompts are task.num_keywords="
            f"{t.num_keywords} words"
        )
    reward_fn = _user_reward_fn(t.name) if ":" in t.name else None
    # a word vocabulary is its pretraining corpus's words, most frequent first
    ranked = tokenizer.vocab if isinstance(tokenizer, WordTokenizer) else rank_words(corpus(cfg))
    pool = content_words(ranked, t.keyword_pool)
    try:
        task = text_task(
            t.name,
            tokenizer,
            prior,
            pool,
            num_keywords=t.num_keywords,
            max_length=t.max_length,
            prompt_len=t.text_prompt_len,
            context=context,
            keyword_reward=t.keyword_reward,
            eos_reward=t.eos_reward,
            prior_coef=t.prior_coef,
            prior_reward=t.prior_reward,
            banned=t.banned,
            banned_reward=t.banned_reward,
            min_words=t.min_words,
            reward_fn=reward_fn,
            sequence_reward=_sequence_reward(t),
        )
    except TaskError as err:
        raise ConfigError(str(err)) from None
    if t.prompts_file:
        task.train_prompts = encode_prompt_file(task, t.prompts_file)
    return task


def _sequence_reward(t) -> SequenceReward | None:
    """task.reward_fn's functions, each imported and checked to be callable, or None."""
    if not t.reward_fns:
        return None
    fns = []
    for name in t.reward_fns:
        try:
            fn = load_attribute(name, "reward function")
        except TaskError as err:
            raise ConfigError(str(err)) from None
        if not callable(fn):
            raise ConfigError(f"task.reward_fn {name} is not a function")
        fns.append((name, fn))
    return SequenceReward(fns, t.weights, t.success_reward)


def encode_prompt_file(task, path: str) -> np.ndarray:
    """A prompt file's prompts as ids; their records stay with the task for sequence-level reward functions."""
    try:
        records = read_prompt_records(Path(path))
        return task.encode_prompts([r.prompt for r in records], path, records)
    except (TextError, TaskError) as err:
        raise ConfigError(str(err)) from None


def init_checkpoint(run_dir: Path) -> Checkpoint:
    path = latest_checkpoint(Path(run_dir) / "checkpoints")
    if path is None:
        raise CheckpointError(f"{run_dir} has no checkpoints to start from")
    return load_checkpoint(path)


@functools.lru_cache(maxsize=4)
def run_network(run_dir: str) -> QNetConfig:
    """The network config stored in the newest checkpoint of a run directory (init.from_run)."""
    try:
        return QNetConfig(**init_checkpoint(Path(run_dir)).learner["network"])
    except (KeyError, TypeError):
        raise CheckpointError(f"the checkpoint in {run_dir} does not describe its network; pretrain it again") from None


def build_text_task(cfg: Config, with_prior: bool = True) -> TextTask:
    """A text task with its tokenizer and frozen prior: a `tokenq pretrain` run's word vocabulary and network
    (init.from_run), or the Hugging Face model in init.from_hf, which is then also the fluency prior (read with any
    adapters off, so that a LoRA Q-network can share it: `acting_network`). `with_prior=False`: no prior (the
    learner's process needs only the task's sizes)."""
    if cfg.init.from_hf:
        tokenizer, prior_net, context = _hf_source(cfg, with_prior)
    elif cfg.init.from_run:
        tokenizer, prior_net, context = _run_source(cfg), None, None
        if with_prior:
            run_dir = Path(cfg.init.from_run)
            prior_net = QNetwork(run_network(cfg.init.from_run))
            load_weights(prior_net, init_checkpoint(run_dir), run_dir)
    else:
        raise ConfigError(
            f"task {cfg.task.name} needs init.from_hf=DIR (a Hugging Face model directory) or init.from_run=DIR (a "
            "run directory made by `tokenq pretrain`): its tokenizer and language model are the task's vocabulary "
            "and prior"
        )
    prior = PriorModel(prior_net) if prior_net is not None else None  # also the evaluation's perplexity
    return make_text_task(cfg, tokenizer, prior, context)


def _run_source(cfg: Config) -> WordTokenizer:
    return WordTokenizer.load(Path(cfg.init.from_run) / "tokenizer.json")


def _hf_source(cfg: Config, with_prior: bool):
    """The Hugging Face model's tokenizer, the model itself as the prior's network, and its context length."""
    from actors.hf_text import HFTokenizer
    from learner.hf import HFQNetwork, context_length, load_causal_lm

    lm = load_causal_lm(cfg.init.from_hf)
    tokenizer = HFTokenizer.load(
        cfg.init.from_hf, lm.get_output_embeddings().out_features, cfg.hf.chat_template, cfg.task.system_prompt
    )
    prior_net = None
    if with_prior:  # the model as it is: logits read as they are, no adapters, no bias
        prior_cfg = QNetConfig(hf_path=cfg.init.from_hf, q_head="plain")
        prior_net = HFQNetwork(prior_cfg, lm=lm, base_only=True)
    return tokenizer, prior_net, context_length(lm)


def load_weights(net: QFunction, state: Checkpoint, source) -> None:
    if "base" in state.learner:  # adapters: only on the base model they were trained on
        from learner.lora import check_base

        check_base(state.learner["base"], net.base_reference(), source)
    try:
        net.load_state_dict(state.learner["online"])
    except (RuntimeError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0][:120]
        raise CheckpointError(f"the checkpoint in {source} does not fit this model ({reason})") from None


def _user_reward_fn(name: str):
    """A user's reward function `module:function` for a Hugging Face model's decoded text."""
    from actors.tasks import RewardFunctionTask, make_task

    try:
        task = make_task(name)
    except TaskError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(task, RewardFunctionTask):
        raise ConfigError(
            f"task {name} is a Task class; with init.from_hf give a reward function fn(prompt, generated)"
        )
    return task.fn
