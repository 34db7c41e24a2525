"""What both modes build from a Config: the task, the resolved network shape, held-out prompts, exact Q*, and the
factories the Ray hosts build their rollout workers and learners with."""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actors.policy import Policy
from actors.rollout import RolloutWorker
from actors.tasks import PromptSource, Task, TaskError, heldout_prompts, make_task
from distributed.factories import HostFactories
from learner.config import NETWORK_HF_FIELDS, QNetConfig
from learner.learner import Learner
from learner.model import make_network
from learner.qfunction import QFunction
from learner.tabular import State, q_star, soft_q_star
from tokenq.config import Config, ConfigError, config_from_dict

log = logging.getLogger("tokenq")


@dataclass
class RunSpec:
    cfg: Config
    task: Task
    net_cfg: QNetConfig
    heldout: np.ndarray  # (N, P) evaluation prompts, never trained on
    q_star: dict[State, np.ndarray] | None

    @property
    def policy(self) -> Policy:
        return acting_policy(self.cfg)

    def acting_network(self) -> QFunction:
        """A network to act and evaluate with (on the LM the task's prior holds, where it can share it)."""
        return acting_network(self.task, self.net_cfg)


def resolve_net_config(cfg: Config, task: Task) -> QNetConfig:
    """The network's whole config: init.from_run's network (checked to hold the task), or model.* with the task's
    sizes and special tokens and, on a Hugging Face model (init.from_hf), the hf.* settings a network reads."""
    if cfg.init.from_run:
        from tokenq.text_setup import run_network

        net = run_network(cfg.init.from_run)
        for size, need, what in [
            (net.vocab_size, task.vocab_size, "vocabulary"),
            (net.max_prompt_len, task.prompt_len, "prompts"),
            (net.max_gen_len, task.max_steps, "episodes"),
        ]:
            if size < need:
                raise ConfigError(
                    f"the network of init.from_run={cfg.init.from_run} is too small for task {task.name}'s {what} "
                    f"({size} positions or tokens, the task needs {need})"
                )
        return net
    return QNetConfig(
        **dataclasses.asdict(cfg.model),
        vocab_size=task.vocab_size,
        max_prompt_len=task.prompt_len,
        max_gen_len=task.max_steps,
        bos_id=task.tokenizer.bos_id,
        sep_id=task.tokenizer.sep_id,
        hf_path=cfg.init.from_hf,
        **{name: getattr(cfg.hf, name) for name in NETWORK_HF_FIELDS},
        prefix_ids=task.tokenizer.shared_prefix() if cfg.init.from_hf else [],
        soft_beta=cfg.learner.beta if cfg.model.q_head == "soft" else 0.0,
    )


def acting_policy(cfg: Config) -> Policy:
    """The actors' policy (actors.policy under learner.backup); evaluation reads its greedy form and its sampled one."""
    a, soft = cfg.actors, cfg.learner.backup == "soft"
    sample = a.policy == "sample" or (a.policy == "auto" and soft)
    return Policy(cfg.learner.beta if soft else None, sample, a.top_k, a.top_p, a.temperature, a.explore)


def acting_network(task: Task, net_cfg: QNetConfig) -> QFunction:
    """The network a process acts with, in eval mode. Where the network can (make_network), it is built on the LM
    the task's fluency prior already holds: one copy of the base model per process."""
    return make_network(net_cfg, share_lm=_prior_network(task)).eval()


def _prior_network(task: Task) -> QFunction | None:
    prior = task.prior  # text tasks have one; the letter tasks none
    return prior.net if prior is not None else None


def make_worker(
    cfg: Config, task: Task, net_cfg: QNetConfig, heldout: np.ndarray, epsilon: float, seed: int
) -> RolloutWorker:
    """A rollout worker as configured; it never draws a held-out prompt."""
    a = cfg.actors
    return RolloutWorker(
        task,
        net_cfg,
        PromptSource(task, seed, heldout),
        epsilon,
        a.batch_size,
        cfg.learner.gamma,
        cfg.learner.n_step,
        seed + 1,
        acting_policy(cfg),
        net=acting_network(task, net_cfg),
    )


def build_task(cfg: Config, with_prior: bool = True) -> Task:
    """The configured task; a text task also loads its tokenizer and frozen prior (init.from_run or init.from_hf;
    `with_prior=False` skips a Hugging Face model's prior, which only actors and evaluation use)."""
    from actors.text_task import TEXT_TASKS
    from tokenq.text_setup import build_text_task

    if cfg.task.name in TEXT_TASKS or cfg.init.from_hf:
        return build_text_task(cfg, with_prior)
    if cfg.task.reward_fn:
        raise ConfigError(
            f"task.reward_fn scores text: it needs a text task ({', '.join(TEXT_TASKS)}), not {cfg.task.name}"
        )
    try:
        return make_task(cfg.task.name, cfg.task.prompt_len)
    except TaskError as err:
        raise ConfigError(str(err)) from None


def build_heldout(cfg: Config, task: Task) -> np.ndarray:
    """Evaluation prompts: task.eval_prompts_file, or task.eval_prompts drawn from task.eval_seed."""
    if cfg.task.eval_prompts_file:
        from tokenq.text_setup import encode_prompt_file

        return encode_prompt_file(task, cfg.task.eval_prompts_file)
    return heldout_prompts(task, cfg.task.eval_prompts, cfg.task.eval_seed)


def build_spec(cfg: Config) -> RunSpec:
    task = build_task(cfg)
    net_cfg = resolve_net_config(cfg, task)
    heldout = build_heldout(cfg, task)
    soft = cfg.learner.backup == "soft"
    table = None
    if task.enumerable:  # the exact Q* of the backup the learner runs
        table = soft_q_star(task, cfg.learner.gamma, cfg.learner.beta) if soft else q_star(task, cfg.learner.gamma)
    return RunSpec(cfg, task, net_cfg, heldout, table)


def check_resume_base(spec: RunSpec, state, source) -> None:
    """A checkpoint of LoRA adapters continues only on the base model it was trained on (one sentence if not)."""
    reference = state.learner.get("base")
    if reference is None:
        return
    from learner.lora import check_base

    holder = _prior_network(spec.task)  # the prior reads the run's base model: no second copy to fingerprint
    if holder is None:
        holder = make_network(spec.net_cfg)
    check_base(reference, holder.base_reference(), source)


def init_learner(learner, cfg: Config) -> None:
    """Start online and target networks from init.from_run's newest checkpoint (the optimizer starts fresh)."""
    from tokenq.text_setup import init_checkpoint, load_weights

    if not cfg.init.from_run:
        return  # a Hugging Face network starts from init.from_hf as it is built

    state = init_checkpoint(Path(cfg.init.from_run))
    load_weights(learner.online, state, cfg.init.from_run)
    learner.target.load_state_dict(learner.online.state_dict())


def _worker_from_config(config: dict, epsilon: float, seed: int) -> RolloutWorker:
    cfg = config_from_dict(config)
    task = build_task(cfg)
    return make_worker(cfg, task, resolve_net_config(cfg, task), build_heldout(cfg, task), epsilon, seed)


def _learner_from_config(config: dict) -> Learner:
    cfg = config_from_dict(config)
    learner = Learner(cfg.learner, resolve_net_config(cfg, build_task(cfg, with_prior=False)), seed=cfg.train.seed)
    init_learner(learner, cfg)
    return learner


class Evaluator:
    """Greedy evaluation of published weights on the held-out prompts: what the evaluation actor runs."""

    def __init__(self, cfg: Config):
        task = build_task(cfg)
        self.task, self.heldout = task, build_heldout(cfg, task)
        self.net = acting_network(task, resolve_net_config(cfg, task))
        self.policy = acting_policy(cfg)

    def __call__(self, weights: dict) -> dict:
        from tokenq.evaluation import greedy_eval

        self.net.load_state_dict(weights)
        return greedy_eval(self.net, self.task, self.heldout, num_samples=4, policy=self.policy)


def _evaluator_from_config(config: dict) -> Evaluator:
    return Evaluator(config_from_dict(config))


def host_factories(cfg: Config) -> HostFactories:
    """Factories for the Ray hosts: each rebuilds its part from the resolved config, in its own process."""
    config = cfg.to_dict()
    return HostFactories(
        functools.partial(_worker_from_config, config),
        functools.partial(_learner_from_config, config),
        functools.partial(_evaluator_from_config, config),
    )
