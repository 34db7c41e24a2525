"""Building text tasks from a config: the corpus, the word tokenizer, the frozen prior and the keyword pool.

A text task's tokenizer and prior come from a `tokenq pretrain` run (`init.from_run`); the trained network takes
that run's model shape.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from actors.tasks import TaskError
from actors.text import TextError, WordTokenizer, read_corpus, read_prompt_file
from actors.text_tasks import PriorModel, TextTask
from learner.checkpoint import Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint
from learner.model import QNetConfig, QNetwork
from tokenq.config import Config, ConfigError
from tokenq.run_dir import read_run_config

TEXT_TASKS = ("keywords", "fluency", "lipogram")

# Function words never chosen as keywords.
STOPWORDS = set(
    """a an the this that these those some any every each no one two three four five six seven eight nine ten
    i you he she it we they me him her us them my your his its our their mine yours who whom whose which what
    and or but because so if when while as than then of in on at to from by with without about into onto over
    under after before near behind above below through across around between is are was were be been being am
    do does did done has have had having will would can could shall should may might must not very too also
    there here where why how all both more most many much few little other another such only just""".split()
)


def load_sentences(cfg: Config) -> list[list[str]]:
    """The corpus as lists of words: `task.corpus`, or sentences drawn from the built-in grammar."""
    if cfg.task.corpus:
        return read_corpus(Path(cfg.task.corpus))
    from actors.corpus.grammar import generate_corpus

    return [s.split() for s in generate_corpus(cfg.task.corpus_sentences, seed=cfg.train.seed)]


def keyword_pool(tokenizer: WordTokenizer, size: int) -> list[int]:
    """The `size` most frequent vocabulary words that are neither function words nor punctuation."""
    pool = [tokenizer.id_of(w) for w in tokenizer.vocab if w.isalpha() and w not in STOPWORDS]
    return pool[:size]


def make_text_task(cfg: Config, tokenizer: WordTokenizer, prior: PriorModel | None) -> TextTask:
    t = cfg.task
    task = TextTask(
        t.name,
        tokenizer,
        prior,
        t.num_keywords,
        t.max_length,
        keyword_pool(tokenizer, t.keyword_pool),
        t.keyword_reward if t.name == "keywords" else 0.0,
        t.eos_reward,
        t.prior_coef,
        t.prior_reward,
    )
    if t.prompts_file:
        task.train_prompts = encode_prompt_file(task, t.prompts_file)
    return task


def encode_prompt_file(task, path: str) -> np.ndarray:
    try:
        return task.encode_prompts(read_prompt_file(Path(path)), path)
    except (TextError, TaskError) as err:
        raise ConfigError(str(err)) from None


def init_checkpoint(run_dir: Path) -> Checkpoint:
    path = latest_checkpoint(Path(run_dir) / "checkpoints")
    if path is None:
        raise CheckpointError(f"{run_dir} has no checkpoints to start from")
    return load_checkpoint(path)


def apply_init_run(cfg: Config) -> None:
    """Take the network shape (and, for text tasks, the vocabulary size) of the run named by init.from_run."""
    run_cfg = read_run_config(Path(cfg.init.from_run))
    try:
        cfg.model = QNetConfig(**run_cfg["model"])
    except (KeyError, TypeError):
        raise ConfigError(f"{cfg.init.from_run}/config.json has no usable model section") from None


def build_text_task(cfg: Config, with_prior: bool = True) -> TextTask:
    if cfg.init.from_hf:
        return build_hf_task(cfg, with_prior)
    if cfg.task.name == "lipogram":
        raise ConfigError("task lipogram needs a Hugging Face model (init.from_hf=DIR)")
    if not cfg.init.from_run:
        raise ConfigError(
            f"task {cfg.task.name} needs init.from_hf=DIR (a Hugging Face model directory) or init.from_run=DIR (a "
            "run directory made by `tokenq pretrain`): its tokenizer and language model are the task's vocabulary "
            "and prior"
        )
    run_dir = Path(cfg.init.from_run)
    tokenizer = WordTokenizer.load(run_dir / "tokenizer.json")
    prior_net = QNetwork(dataclasses.replace(cfg.model))
    load_weights(prior_net, init_checkpoint(run_dir), run_dir)
    return make_text_task(cfg, tokenizer, PriorModel(prior_net))


def load_weights(net: QNetwork, state: Checkpoint, source) -> None:
    if "base" in state.learner:  # adapters: only on the base model they were trained on
        from learner.lora import check_base

        check_base(state.learner["base"], net.base_reference(), source)
    try:
        net.load_state_dict(state.learner["online"])
    except (RuntimeError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0][:120]
        raise CheckpointError(f"the checkpoint in {source} does not fit this model ({reason})") from None


def hf_sentences(cfg: Config) -> list[str]:
    """The corpus as sentences of text: `task.corpus` split at sentence ends, or the built-in grammar's."""
    from actors.hf_text import read_text_lines, split_sentences

    if cfg.task.corpus:
        return split_sentences(read_text_lines(Path(cfg.task.corpus)))
    from actors.corpus.grammar import generate_corpus

    return generate_corpus(cfg.task.corpus_sentences, seed=cfg.train.seed)


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


def build_hf_task(cfg: Config, with_prior: bool = True):
    """A text task on the Hugging Face model in init.from_hf: its tokenizer, and the model itself frozen as the
    fluency prior (read with any adapters off, so that a LoRA Q-network can share it: `acting_network`); keywords
    and topics are the corpus's most frequent content words. `with_prior=False`: no prior (the learner's process
    needs only the task's sizes)."""
    from actors.hf_tasks import HFTextTask
    from actors.hf_text import HFTokenizer, content_words
    from learner.hf import HFQNetwork, context_length, load_causal_lm

    t = cfg.task
    reward_fn = _user_reward_fn(t.name) if ":" in t.name else None
    lm = load_causal_lm(cfg.init.from_hf)
    vocab = lm.get_output_embeddings().out_features
    tokenizer = HFTokenizer.load(cfg.init.from_hf, vocab, t.chat_template)
    prior_cfg = dataclasses.replace(cfg.model, hf_path=cfg.init.from_hf, q_head="plain")
    prior_cfg.lora_rank, prior_cfg.token_bias = 0, False
    prior = PriorModel(HFQNetwork(prior_cfg, lm=lm, base_only=True)) if t.prior_coef and with_prior else None
    task = HFTextTask(
        t.name,
        tokenizer,
        prior,
        content_words(hf_sentences(cfg), t.keyword_pool),
        t.num_keywords,
        t.max_length,
        t.max_prompt_tokens,
        context_length(lm),
        keyword_reward=t.keyword_reward,
        eos_reward=t.eos_reward,
        prior_coef=t.prior_coef,
        prior_reward=t.prior_reward,
        banned=t.banned,
        banned_reward=t.banned_reward,
        min_words=t.min_words,
        reward_fn=reward_fn,
    )
    if t.prompts_file:
        task.train_prompts = encode_prompt_file(task, t.prompts_file)
    return task
