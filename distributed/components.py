"""What both drivers build from a Config: the task, the resolved network shape, held-out prompts, exact Q*,
and the bookkeeping every run shares (timers, the target clock, run-directory files)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actors.rollout import RolloutWorker
from actors.tasks import PromptSource, Task, TaskError, heldout_prompts, make_task
from distributed.config import Config, ConfigError
from learner.model import QNetConfig
from learner.tabular import State, q_star

log = logging.getLogger("tokenq")


@dataclass
class RunSpec:
    cfg: Config
    task: Task
    net_cfg: QNetConfig
    heldout: np.ndarray  # (N, P) evaluation prompts, never trained on
    q_star: dict[State, np.ndarray] | None


def resolve_net_config(cfg: Config, task: Task) -> QNetConfig:
    """model.* with vocab_size / max_prompt_len / max_gen_len = 0 taken from the task, checked against it."""
    m = dataclasses.replace(cfg.model)
    m.vocab_size = m.vocab_size or task.vocab_size
    m.max_prompt_len = m.max_prompt_len or task.prompt_len
    m.max_gen_len = m.max_gen_len or task.max_steps
    if m.vocab_size < task.vocab_size:
        raise ConfigError(
            f"model.vocab_size ({m.vocab_size}) is smaller than task {task.name}'s vocabulary ({task.vocab_size})"
        )
    if m.max_prompt_len < task.prompt_len:
        raise ConfigError(
            f"model.max_prompt_len ({m.max_prompt_len}) is shorter than task {task.name}'s prompts ({task.prompt_len})"
        )
    if m.max_gen_len < task.max_steps:
        raise ConfigError(
            f"model.max_gen_len ({m.max_gen_len}) is shorter than task {task.name}'s episodes ({task.max_steps})"
        )
    return m


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
        a.explore,
        a.temperature,
    )


def build_task(cfg: Config) -> Task:
    """The configured task; a text task also loads its tokenizer and frozen prior from init.from_run."""
    from distributed import text_setup

    if cfg.task.name in text_setup.TEXT_TASKS:
        return text_setup.build_text_task(cfg)
    try:
        return make_task(cfg.task.name, cfg.task.prompt_len)
    except TaskError as err:
        raise ConfigError(str(err)) from None


def build_heldout(cfg: Config, task: Task) -> np.ndarray:
    """Evaluation prompts: task.eval_prompts_file, or task.eval_prompts drawn from task.eval_seed."""
    if cfg.task.eval_prompts_file:
        from distributed.text_setup import encode_prompt_file

        return encode_prompt_file(task, cfg.task.eval_prompts_file)
    return heldout_prompts(task, cfg.task.eval_prompts, cfg.task.eval_seed)


def build_spec(cfg: Config) -> RunSpec:
    if cfg.init.from_run:
        from distributed.text_setup import apply_init_run

        apply_init_run(cfg)
    task = build_task(cfg)
    net_cfg = resolve_net_config(cfg, task)
    heldout = build_heldout(cfg, task)
    table = q_star(task, cfg.learner.gamma) if task.enumerable else None
    return RunSpec(cfg, task, net_cfg, heldout, table)


def init_learner(learner, cfg: Config) -> None:
    """Start online and target networks from init.from_run's newest checkpoint (the optimizer starts fresh)."""
    from distributed.text_setup import init_checkpoint, load_weights

    state = init_checkpoint(Path(cfg.init.from_run))
    load_weights(learner.online, state, cfg.init.from_run)
    learner.target.load_state_dict(learner.online.state_dict())


def write_json(path: Path, data: dict) -> None:
    """Atomic: a reader never sees half a file."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


class PhaseTimer:
    """Wall time per named driver phase (RLlib-style), and the training clock that excludes evaluation."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.start = time.perf_counter()
        self.excluded = 0.0

    @contextmanager
    def phase(self, name: str, exclude_from_training: bool = False):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.totals[name] = self.totals.get(name, 0.0) + dt
            if exclude_from_training:
                self.excluded += dt

    def state(self) -> dict:
        return {"train_s": self.train_s, "wall_s": self.wall_s, "totals": dict(self.totals)}

    def load_state(self, state: dict) -> None:
        """Continue the clocks of a checkpointed run."""
        now = time.perf_counter()
        self.start = now - float(state["wall_s"])
        self.excluded = float(state["wall_s"]) - float(state["train_s"])
        self.totals = {k: float(v) for k, v in state["totals"].items()}

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.start

    @property
    def train_s(self) -> float:
        return self.wall_s - self.excluded


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM ask a run to stop at its next safe point, where the driver writes a final
    checkpoint, replay snapshot and summary. A second signal interrupts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # Python lets only the main thread set handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: stopping at the next safe point (send it again to stop at once)", self.name)

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name


@dataclass
class EvalTracker:
    """Records greedy evaluations and the training time at which success first reached the target."""

    target: float
    time_to_target_s: float | None = None
    updates_to_target: int | None = None
    history: list[dict] = field(default_factory=list)

    def state(self) -> dict:
        return {
            "time_to_target_s": self.time_to_target_s,
            "updates_to_target": self.updates_to_target,
            "history": self.history,
        }

    def load_state(self, state: dict) -> None:
        self.time_to_target_s, self.updates_to_target = state["time_to_target_s"], state["updates_to_target"]
        self.history = list(state["history"])

    def record(self, result: dict, train_s: float, updates: int) -> bool:
        self.history.append(
            {
                "train_s": round(train_s, 3),
                "updates": updates,
                "success_rate": result["success_rate"],
                "mean_return": result["mean_return"],
            }
        )
        reached = result["success_rate"] is not None and result["success_rate"] >= self.target
        if reached and self.time_to_target_s is None:
            self.time_to_target_s, self.updates_to_target = round(train_s, 3), updates
        return reached
