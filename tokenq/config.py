"""The run configuration: documented dataclass fields, presets, YAML files and dotted overrides, validated.

Every error is a ConfigError whose message is one sentence naming the bad key or value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import re
import tokenize
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from learner.config import HFConfig, LearnerConfig, ModelConfig, problems_of
from tokenq.presets import PRESET_DIR, PRESETS


class ConfigError(ValueError):
    pass


TEXT_PROMPT_LEN = 64  # task.prompt_len=0 on a Hugging Face model


@dataclass
class TaskConfig:
    name: str = "reverse"  # a built-in task or module:attribute
    # Prompt length in tokens: a letter task's letters (digits per operand for `add`); the longest text prompt on a
    # Hugging Face model, chat template included (longer ones are refused). 0: the task's default (a letter task's
    # own, TEXT_PROMPT_LEN tokens of text; a word vocabulary's prompts are always task.num_keywords words).
    prompt_len: int = 0
    eval_prompts: int = 500  # held-out prompts for greedy evaluation
    eval_seed: int = 12345  # the held-out prompts are drawn from this seed and never trained on
    target_success: float = 0.95  # time_to_target_s is when greedy success first reaches this
    # Text tasks (keywords, fluency):
    corpus: str = ""  # plain text or JSONL; "" generates the built-in grammar corpus
    corpus_sentences: int = 100_000  # sentences drawn from the built-in grammar
    vocab_size: int = 10_000  # word vocabulary cap, specials included (the article's 10000)
    num_keywords: int = 2  # words each keywords prompt names
    keyword_pool: int = 200  # keywords are drawn from this many most frequent content words
    max_length: int = 16  # most tokens generated per episode, EOS included
    keyword_reward: float = 1.0  # reward the first time each prompt keyword appears (keywords)
    eos_reward: float = 1.0  # reward for ending with EOS (text tasks); lipogram: for a success, at its last token
    prior_coef: float = 0.5  # c: weight of the per-token fluency term
    prior_reward: str = "gap"  # "gap": log p(a|s) - max log p(.|s); "logp": log p(a|s)
    # A Hugging Face chat model's system turn: "auto" = the chat template's own (its default where it has one);
    # "none" = an empty system turn; any other text replaces it. Every prompt starts with it, so it is computed
    # once into a KV cache that actors and the learner reuse.
    system_prompt: str = "auto"
    # Training prompts: one per line, or JSONL records {"prompt": "..."} or chat {"messages": [...]} (also
    # {"prompt": [messages]}); a record's other fields reach task.reward_fn as keyword arguments.
    prompts_file: str = ""
    eval_prompts_file: str = ""  # held-out evaluation prompts, as task.prompts_file
    # Sequence-level reward functions in TRL's signature, fn(prompts, completions, **kwargs) -> list[float]: one or
    # more module:function, comma-separated, called once per batch of finished episodes and credited at each
    # episode's last token. Added to the task's own reward; task `custom` has no other.
    reward_fn: str = ""
    reward_weights: str = ""  # comma-separated weights of task.reward_fn's functions; "" = 1 each
    success_reward: float = 1.0  # task.reward_fn: an episode whose weighted score reaches this is a success
    # lipogram:
    banned: str = "e"  # lipogram: letters no generated token may contain
    banned_reward: float = -1.0  # lipogram: reward for each generated token whose text holds a banned letter
    # lipogram: words a generation needs to count as a constraint success; ending before them costs what
    # task.max_length banned tokens would
    min_words: int = 4

    @property
    def reward_fns(self) -> list[str]:
        return [name.strip() for name in self.reward_fn.split(",") if name.strip()]

    @property
    def weights(self) -> list[float]:
        """task.reward_weights as numbers (1 each where it is empty)."""
        if not self.reward_weights.strip():
            return [1.0] * len(self.reward_fns)
        return [float(w) for w in self.reward_weights.split(",")]

    def _reward_fn_problems(self) -> list[tuple[bool, str]]:
        names = self.reward_fns
        try:
            weights = self.weights
        except ValueError:
            return [(False, f"task.reward_weights must be comma-separated numbers, got {self.reward_weights!r}")]
        return [
            (
                all(":" in n for n in names),
                f"task.reward_fn must be module:function names, comma-separated, got {self.reward_fn!r}",
            ),
            (
                len(weights) == len(names),
                f"task.reward_weights has {len(weights)} weights for task.reward_fn's {len(names)} functions",
            ),
            (
                self.name != "custom" or (names and self.prompts_file and self.eval_prompts_file),
                "task custom needs task.reward_fn, task.prompts_file and task.eval_prompts_file (its prompts are "
                "yours)",
            ),
        ]

    @property
    def text_prompt_len(self) -> int:
        """The longest text prompt in tokens on a Hugging Face model."""
        return self.prompt_len or TEXT_PROMPT_LEN

    def problems(self) -> list[str]:
        return problems_of(
            "task",
            self,
            [
                (0 <= self.target_success <= 1, f"task.target_success must be in [0, 1], got {self.target_success}"),
                (
                    self.prior_reward in ("gap", "logp"),
                    f"task.prior_reward must be gap or logp, got {self.prior_reward!r}",
                ),
                (self.prior_coef >= 0, f"task.prior_coef must be >= 0, got {self.prior_coef}"),
                (self.min_words >= 0, f"task.min_words must be >= 0, got {self.min_words}"),
                (self.vocab_size >= 16, f"task.vocab_size must be at least 16, got {self.vocab_size}"),
                *self._reward_fn_problems(),
            ],
            ("eval_prompts", "num_keywords", "keyword_pool", "max_length", "corpus_sentences"),
        )


@dataclass
class ActorConfig:
    num_actors: int = 2  # rollout actors (distributed mode); serial mode runs one
    batch_size: int = 32  # episodes generated together per rollout call
    epsilon: float = 0.4  # Ape-X base epsilon: actor i of N uses eps^(1 + alpha i / (N - 1))
    epsilon_alpha: float = 7.0  # Ape-X alpha: how fast epsilon falls from the first actor to the last
    torch_threads: int = 1  # per actor process
    max_pushes_in_flight: int = 4  # unacknowledged replay inserts per actor before it waits
    pull_every: int = 1  # rollout batches between weight-store checks
    num_cpus: float = 1.0  # Ray CPU resource per actor
    # The acting policy, epsilon-greedy on top: "greedy" its most likely token, "sample" a draw from it, "auto"
    # sample under learner.backup=soft and greedy under hard. Soft: pi = pi_ref exp((Q - V) / beta), logits
    # log pi_ref + Q / learner.beta; hard: softmax(Q / actors.temperature). Evaluation reports both.
    policy: str = "auto"
    top_k: int = 0  # policy=sample draws among the policy's k most likely tokens; 0 = all
    top_p: float = 1.0  # policy=sample draws from the smallest set of tokens holding this share of the policy
    explore: str = "uniform"  # exploratory action: "uniform" token, or "softmax" sample from softmax(Q / temperature)
    temperature: float = 1.0  # softmax temperature of explore=softmax and of the hard backup's sampled policy

    def problems(self) -> list[str]:
        return problems_of(
            "actors",
            self,
            [
                (0 <= self.epsilon <= 1, f"actors.epsilon must be in [0, 1], got {self.epsilon}"),
                (self.epsilon_alpha >= 0, f"actors.epsilon_alpha must be >= 0, got {self.epsilon_alpha}"),
                (
                    self.explore in ("uniform", "softmax"),
                    f"actors.explore must be uniform or softmax, got {self.explore!r}",
                ),
                (self.temperature > 0, f"actors.temperature must be > 0, got {self.temperature}"),
                (
                    self.policy in ("auto", "greedy", "sample"),
                    f"actors.policy must be auto, greedy or sample, got {self.policy!r}",
                ),
                (self.top_k >= 0, f"actors.top_k must be >= 0 (0 = every token), got {self.top_k}"),
                (0 < self.top_p <= 1, f"actors.top_p must be in (0, 1], got {self.top_p}"),
            ],
            ("num_actors", "batch_size", "torch_threads", "max_pushes_in_flight", "pull_every"),
        )


@dataclass
class ReplayConfig:
    capacity: int = 20_000  # episodes, across all shards
    num_shards: int = 1  # prioritized replay shards (local mode; serial mode keeps one)
    alpha: float = 0.6  # priority exponent (Schaul et al. 2016)
    beta: float = 0.4  # importance-sampling exponent at the start, annealed linearly to 1
    priority_eps: float = 1e-3  # added to |TD| so that no episode's priority is 0
    min_size_to_sample: int = 256  # episodes stored (over all shards) before the first update
    # Reverb's SampleToInsertRatio, held by the replay itself: transitions trained per transition inserted once
    # min_size_to_sample is reached. Inserts wait when actors run ahead, samples when the learner runs ahead.
    samples_per_insert: float = 4.0
    # How far either side may run ahead of the ratio, in (sampled) transitions over all shards: fixed, whatever the
    # number of actors.
    error_buffer: float = 8192.0
    max_lag: int = 0  # skip episodes generated by weights more than this many versions old when sampling; 0 = off
    prefetch: int = 2  # batches the learner keeps in flight
    snapshot_every_s: float = 30.0  # each shard snapshots itself to RUN_DIR/replay this often (0: never)

    def problems(self) -> list[str]:
        return problems_of(
            "replay",
            self,
            [
                (0 <= self.beta <= 1, f"replay.beta must be in [0, 1], got {self.beta}"),
                (self.alpha >= 0, f"replay.alpha must be >= 0, got {self.alpha}"),
                (self.samples_per_insert > 0, f"replay.samples_per_insert must be > 0, got {self.samples_per_insert}"),
                (self.error_buffer > 0, f"replay.error_buffer must be > 0 transitions, got {self.error_buffer}"),
                (self.max_lag >= 0, f"replay.max_lag must be >= 0 (0 = off), got {self.max_lag}"),
                (
                    self.snapshot_every_s >= 0,
                    f"replay.snapshot_every_s must be >= 0 (0: no snapshots), got {self.snapshot_every_s}",
                ),
            ],
            ("num_shards", "capacity", "min_size_to_sample", "prefetch"),
        )


@dataclass
class TrainConfig:
    total_updates: int = 1500  # learner updates; the run also stops at max_seconds
    max_seconds: float = 100.0  # training wall time budget (evaluation excluded)
    seed: int = 0  # seeds networks, prompts, exploration and replay sampling
    eval_every: int = 100  # updates between greedy evaluations on the held-out prompts
    publish_every: int = 10  # updates between weight publications to actors
    checkpoint_every: int = 500  # updates between checkpoints
    keep_checkpoints: int = 3  # newest checkpoints kept in RUN_DIR/checkpoints
    stop_at_target: bool = False  # end training once greedy success reaches task.target_success
    log_every_s: float = 2.0  # progress line period
    torch_threads: int = 0  # learner/serial-process threads; 0 keeps torch's default
    loss_log: bool = False  # write every update's TD loss to td_loss.tsv in the run directory

    def problems(self) -> list[str]:
        return problems_of(
            "train",
            self,
            [(self.max_seconds > 0, f"train.max_seconds must be > 0, got {self.max_seconds}")],
            ("total_updates", "eval_every", "publish_every", "checkpoint_every", "keep_checkpoints"),
        )


@dataclass
class InitConfig:
    from_run: str = ""  # start from this run's newest checkpoint (a `tokenq pretrain` run for text tasks)
    # A Hugging Face causal LM as the Q-network: a directory (save_pretrained, with its tokenizer) or a .gguf file
    # (dequantized to float32; `tokenq hf-import FILE.gguf --out DIR` converts it once).
    from_hf: str = ""

    def problems(self) -> list[str]:
        return problems_of(
            "init",
            self,
            [
                (
                    not (self.from_hf and self.from_run),
                    "init.from_hf and init.from_run cannot be used together: the network comes from one of them",
                )
            ],
        )


@dataclass
class PretrainConfig:
    steps: int = 1500  # language-model updates
    batch_size: int = 64  # sentences per update
    lr: float = 2e-3  # AdamW learning rate of pretraining
    heldout_sentences: int = 1000  # sentences kept out of training to measure perplexity
    # Share of sentences whose prompt is keywords taken from the sentence itself (the rest: random keywords), so
    # that the prior is a keyword-conditioned language model with a weak copy habit for Q-learning to build on.
    keyword_prompt_frac: float = 0.0  # share of sentences prompted with their own words (the rest: random ones)
    # "" pretrains tokenq's own network; "llama" a Hugging Face Llama (model.d_model, n_layers, n_heads, mlp_ratio)
    # with a byte-level BPE tokenizer of task.vocab_size tokens, both saved to RUN_DIR/hf.
    hf_arch: str = ""

    def problems(self) -> list[str]:
        return problems_of(
            "pretrain",
            self,
            [
                (self.lr > 0, f"pretrain.lr must be > 0, got {self.lr}"),
                (
                    0 <= self.keyword_prompt_frac <= 1,
                    f"pretrain.keyword_prompt_frac must be in [0, 1], got {self.keyword_prompt_frac}",
                ),
                (self.hf_arch in ("", "llama"), f"pretrain.hf_arch must be '' or 'llama', got {self.hf_arch!r}"),
            ],
            ("steps", "batch_size", "heldout_sentences"),
        )


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    # Task presets use a decoder-only stack: on `reverse` it found the prompt alignment in 3-5 s on every seed
    # tried, where a 1-layer encoder-decoder needed 6-13 s or stalled (see the issue notes).
    model: ModelConfig = field(default_factory=lambda: ModelConfig(arch="decoder", n_layers=2))
    hf: HFConfig = field(default_factory=HFConfig)
    actors: ActorConfig = field(default_factory=ActorConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: InitConfig = field(default_factory=InitConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


# Presets (tokenq/presets) are YAML files in the same format as a user's config file (which may start from one
# with `preset: NAME`).

SECTIONS = [f.name for f in dataclasses.fields(Config)]


def _field_types(obj) -> dict[str, type]:
    return typing.get_type_hints(type(obj))


def _convert(key: str, raw: Any, kind: type) -> Any:
    """Parse `raw` (a CLI string or a YAML value) as `kind`, or raise one clear sentence."""
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if isinstance(raw, str) and kind is not str:
        text = raw.strip().lower()
        if kind is bool:
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
        else:
            try:
                value = float(text) if kind is float else int(text.replace("_", ""))
                return value
            except ValueError:
                pass
        raise ConfigError(f"{key} must be {names[kind]}, got {raw!r}")
    if kind is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if kind is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind in (bool, str) and isinstance(raw, kind):
        return raw
    raise ConfigError(f"{key} must be {names[kind]}, got {raw!r}")


# Keys and values that were renamed: each gives one sentence naming the new spelling.
RENAMED_KEYS = {
    "model.dueling": "use model.q_head (plain, dueling, dueling_max or separate)",
    "model.dueling_norm": "use model.q_head: dueling (centred on the mean) or dueling_max (on the max)",
    "task.max_prompt_tokens": "use task.prompt_len (the longest text prompt in tokens)",
    **{
        f"{old}.{name}": f"use hf.{name} (the Hugging Face settings have their own section)"
        for old, name in [
            ("model", "lora_rank"),
            ("model", "lora_alpha"),
            ("model", "lora_targets"),
            ("model", "token_bias"),
            ("learner", "head_lr"),
            ("learner", "token_bias_lr"),
            ("learner", "grad_checkpointing"),
            ("task", "chat_template"),
        ]
    },
    "model.vocab_size": "the network takes its task's vocabulary (task.vocab_size caps a word vocabulary)",
    "model.max_prompt_len": "the network takes its task's prompt length (task.prompt_len)",
    "model.max_gen_len": "the network takes its task's episode length (task.max_length)",
    "model.bos_id": "the network takes its task's tokenizer's special tokens",
    "model.sep_id": "the network takes its task's tokenizer's special tokens",
    "model.hf_path": "use init.from_hf",
}
RENAMED_VALUES = {("model.q_head", "logits"): "plain"}


def set_key(cfg: Config, key: str, raw: Any) -> None:
    if key in RENAMED_KEYS:
        raise ConfigError(f"{key} is no longer a setting; {RENAMED_KEYS[key]}")
    if isinstance(raw, str) and (key, raw) in RENAMED_VALUES:
        raise ConfigError(f"{key}={raw} is now {key}={RENAMED_VALUES[key, raw]}")
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise ConfigError(f"unknown config key {key!r}; keys look like section.name with section one of {SECTIONS}")
    section = getattr(cfg, parts[0])
    types = _field_types(section)
    if parts[1] not in types:
        raise ConfigError(f"unknown config key {key!r}; {parts[0]} has {sorted(types)}")
    setattr(section, parts[1], _convert(key, raw, types[parts[1]]))


# Settings that name a file. A relative path in a config file is relative to that file, so that a preset's prompt
# files travel with it (package data) and a user's config works from any directory; on the command line it is
# relative to the working directory, as a shell user expects.
FILE_KEYS = ("task.prompts_file", "task.eval_prompts_file")


def _flatten(tree: Any, source: str, base_dir: Path | None = None) -> dict[str, Any]:
    if not isinstance(tree, dict):
        raise ConfigError(f"{source} must hold a mapping of sections (task, model, ...), not {type(tree).__name__}")
    flat = {}
    for section, values in tree.items():
        if section == "preset":
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"section {section!r} in {source} must be a mapping of keys to values")
        for name, value in values.items():
            key = f"{section}.{name}"
            if key in FILE_KEYS and base_dir is not None and isinstance(value, str) and value:
                value = str(base_dir / value) if not Path(value).is_absolute() else value
            flat[key] = value
    return flat


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None


def _settings(path: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The flat settings of a config file: those of the preset it names (default: none), then its own."""
    tree = _read_yaml(path) or {}
    base = tree.get("preset") if isinstance(tree, dict) else None
    inherited: dict[str, Any] = {}
    if base is not None:
        if base not in PRESETS:
            raise ConfigError(f"preset {base!r} in {path} is unknown; choose one of {PRESETS}")
        if base in seen:
            raise ConfigError(f"preset {base!r} in {path} names itself through {' -> '.join(seen)}")
        inherited = _settings(PRESET_DIR / f"{base}.yaml", (*seen, base))
    return {**inherited, **_flatten(tree, str(path), path.parent)}


def load_config(name_or_path: str, overrides: list[str] | None = None, for_run: bool = True) -> Config:
    """A preset name or a YAML path (which may name a `preset:` to start from), then `key=value` overrides.
    `for_run=False` (`tokenq config`): a config may still lack the model a user brings (init.from_hf)."""
    if name_or_path in PRESETS:
        preset, own = _settings(PRESET_DIR / f"{name_or_path}.yaml", (name_or_path,)), {}
    elif name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).exists():
        path = Path(name_or_path)
        tree = _read_yaml(path) or {}
        base = tree.get("preset", "reverse") if isinstance(tree, dict) else "reverse"
        if base not in PRESETS:
            raise ConfigError(f"preset {base!r} in {path} is unknown; choose one of {PRESETS}")
        preset, own = _settings(PRESET_DIR / f"{base}.yaml", (base,)), _flatten(tree, str(path), path.parent)
    else:
        raise ConfigError(f"--config {name_or_path!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")
    cfg, preset_cfg = Config(), Config()
    for key, value in preset.items():
        set_key(cfg, key, value)
        set_key(preset_cfg, key, value)
    for key, value in own.items():
        set_key(cfg, key, value)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        set_key(cfg, key.strip(), value)
    _check_init_model(cfg, preset_cfg.model)
    validate(cfg, needs_hf_model=for_run)
    return cfg


def _check_init_model(cfg: Config, preset_model) -> None:
    """With init.from_run the network is that run's: a model.* value changed from the preset is refused, not
    silently dropped."""
    if not cfg.init.from_run:
        return
    for f in dataclasses.fields(cfg.model):
        if getattr(cfg.model, f.name) != getattr(preset_model, f.name):
            raise ConfigError(
                f"model.{f.name} cannot be changed together with init.from_run: the network (its shape and "
                f"weights) comes from the run in {cfg.init.from_run}"
            )


def config_from_dict(tree: dict) -> Config:
    """Rebuild a resolved config (as written to a run directory) and validate it."""
    cfg = Config()
    for key, value in _flatten(tree, "the run's config").items():
        set_key(cfg, key, value)
    validate(cfg)
    return cfg


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def validate(cfg: Config, needs_hf_model: bool = True) -> None:
    """Each section's own checks (its `problems()`), then the rules that join sections; the first problem is
    raised as one sentence. `needs_hf_model=False` reads settings that need a Hugging Face model as if
    init.from_hf were set (a preset printed before the user names their model)."""
    c = cfg
    for section in SECTIONS:
        found = getattr(c, section).problems()
        _check(not found, found[0] if found else "")
    hf = bool(c.init.from_hf) or not needs_hf_model
    _check(
        not hf or c.model.q_head != "dueling",
        "model.q_head=dueling (centred on the mean) is tokenq's own network's; on a Hugging Face model use "
        "dueling_max (what q_head=dueling was), plain or separate",
    )
    _check(hf or c.model.q_head != "separate", "model.q_head=separate needs a Hugging Face model (init.from_hf)")
    for f in dataclasses.fields(HFConfig):
        value = getattr(c.hf, f.name)
        _check(hf or value == f.default, f"hf.{f.name}={value} needs a Hugging Face model (init.from_hf)")
    soft = c.learner.backup == "soft"
    _check(
        not (hf and soft) or c.hf.train_layers >= 0,
        "learner.backup=soft on a Hugging Face model reads log pi_ref from the frozen trunk's reference top: set "
        "hf.train_layers (and hf.lora_rank=0)",
    )
    _check(
        not (hf and soft) or c.model.q_head == "soft",
        f"learner.backup=soft on a Hugging Face model needs model.q_head=soft (Q as a shift of the reference "
        f"model, starting at 0), got {c.model.q_head!r}",
    )
    _check(
        c.model.q_head != "soft" or (hf and soft),
        "model.q_head=soft is the soft backup's head on a Hugging Face model: it needs init.from_hf and "
        "learner.backup=soft",
    )
    _check(
        not (hf and soft and c.learner.compile),
        "learner.compile does not reach the reference model the soft backup reads; leave learner.compile=false",
    )
    _check(
        hf or c.task.system_prompt == "auto",
        "task.system_prompt needs a Hugging Face chat model (init.from_hf)",
    )
    _check(
        c.hf.lora_rank == 0 or _importable("peft"),
        'hf.lora_rank needs peft, which is not installed: pip install -e ".[hf]"',
    )
    _check(
        c.replay.capacity >= c.replay.num_shards * c.learner.batch_size,
        f"replay.capacity ({c.replay.capacity}) must hold at least learner.batch_size episodes per shard",
    )


def field_docs(cls: type) -> dict[str, str]:
    """Each field's comment in the dataclass's source: the `# ...` after it on its line, else the comment lines
    right above it. The source is the documentation (CleanRL's habit); `tokenq config` prints it."""
    docs: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# "))
            continue
        match = re.match(r"^(\w+)\s*:[^=]*(=.*)?$", text)
        if match and not text.startswith(("def ", "return")):
            code, _, comment = _split_comment(text)
            docs[match.group(1)] = comment or " ".join(above)
        above = []
    return docs


def _split_comment(line: str) -> tuple[str, str, str]:
    """(code, "#", comment) of one line, a `#` inside a string literal left alone."""
    tokens = list(tokenize.generate_tokens(io.StringIO(line + "\n").readline))
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            return line[: tok.start[1]].rstrip(), "#", tok.string.lstrip("# ").strip()
    return line, "", ""


def to_yaml(cfg: Config, name: str) -> str:
    """The resolved config as YAML, one comment per field; `tokenq train --config FILE` reads it back."""
    lines = [
        f"# tokenq config {name}: every field resolved. Edit, then: tokenq train --config FILE.yaml",
        f"preset: {name if name in PRESETS else 'reverse'}",
    ]
    for section in SECTIONS:
        obj = getattr(cfg, section)
        docs = field_docs(type(obj))
        lines.append(f"{section}:")
        for f in dataclasses.fields(obj):
            value = yaml.safe_dump(getattr(obj, f.name), default_flow_style=True).strip()
            value = value.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"  {f.name}: {value}  # {docs.get(f.name, '')}")
    return "\n".join(lines) + "\n"
