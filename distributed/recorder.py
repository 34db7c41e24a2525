"""What both drivers record: the run directory, TensorBoard, progress lines, evaluations, checkpoints, summary."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distributed import metrics as M
from distributed.components import EvalTracker, PhaseTimer, RunSpec, write_json
from distributed.evaluation import greedy_eval, q_star_errors
from learner.checkpoint import save_checkpoint
from learner.model import QNetwork

log = logging.getLogger("tokenq")


def full_eval(spec: RunSpec, net: QNetwork, num_samples: int = 4) -> dict:
    """Greedy evaluation on the held-out prompts, plus the distance to Q* where the task has it."""
    result = greedy_eval(net, spec.task, spec.heldout, num_samples=num_samples)
    if spec.q_star is not None:
        result["q_star_max_abs_error"], result["q_star_mean_abs_error"] = q_star_errors(net, spec.q_star)
    else:
        result["q_star_max_abs_error"] = result["q_star_mean_abs_error"] = None
    return result


class RunRecorder:
    def __init__(self, spec: RunSpec, run_dir: Path, config_name: str, mode: str, eval_pauses_training: bool):
        self.spec, self.run_dir, self.config_name, self.mode = spec, Path(run_dir), config_name, mode
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / "config.json", spec.cfg.to_dict())
        write_json(self.run_dir / "run.json", {"mode": mode, "config": config_name})
        if hasattr(spec.task.tokenizer, "save"):  # a word vocabulary travels with the run that uses it
            spec.task.tokenizer.save(self.run_dir / "tokenizer.json")
        self.writer = M.MetricsWriter(str(self.run_dir / "tb"))
        self.writer.config(spec.cfg.to_dict())
        self.timer = PhaseTimer()
        self.tracker = EvalTracker(spec.cfg.task.target_success)
        self.recent_returns: deque[float] = deque(maxlen=200)
        self.last_success: float | None = None
        self.eval_pauses_training = eval_pauses_training
        self.baseline_eval: dict | None = None
        self.next_log = time.perf_counter() + spec.cfg.train.log_every_s
        self.loss_log = open(self.run_dir / "td_loss.tsv", "a") if spec.cfg.train.loss_log else None

    def state(self) -> dict:
        """What a resumed run needs to continue the clocks, the evaluation history and the baseline."""
        return {"timer": self.timer.state(), "tracker": self.tracker.state(), "baseline": self.baseline_eval}

    def load_state(self, state: dict, updates: int) -> None:
        self.timer.load_state(state["timer"])
        self.tracker.load_state(state["tracker"])
        self.baseline_eval = state["baseline"]
        if self.loss_log is not None:  # drop losses logged after the checkpoint by the process that died
            self.loss_log.close()
            path = self.run_dir / "td_loss.tsv"
            kept = [ln for ln in path.read_text().splitlines(keepends=True) if int(ln.split("\t")[0]) <= updates]
            path.write_text("".join(kept))
            self.loss_log = open(path, "a")

    def td_loss(self, updates: int, loss: float) -> None:
        """Every update's TD loss, with train.loss_log (the golden resume test compares these)."""
        if self.loss_log is not None:
            self.loss_log.write(f"{updates}\t{loss!r}\n")

    def baseline(self, net: QNetwork) -> None:
        """Evaluate the starting (warm-start) policy once, to report next to the final one."""
        with self.timer.phase("evaluate", exclude_from_training=True):
            self.baseline_eval = full_eval(self.spec, net, num_samples=2)

    def episodes(self, returns: list[float]) -> None:
        self.recent_returns.extend(returns)

    def evaluate(self, net: QNetwork, updates: int, env_steps: int) -> bool:
        """Greedy evaluation on held-out prompts; True once success reached the target."""
        with self.timer.phase("evaluate", exclude_from_training=self.eval_pauses_training):
            result = greedy_eval(net, self.spec.task, self.spec.heldout, num_samples=4)
        self.last_success = result["success_rate"]
        self.writer.scalars({M.SUCCESS_RATE: result["success_rate"]}, env_steps)
        self.writer.greedy_samples(result["samples"], env_steps)
        return self.tracker.record(result, self.timer.train_s, updates)

    def checkpoint(self, updates: int, state: dict) -> Path:
        if self.loss_log is not None:
            self.loss_log.flush()  # the losses up to a checkpoint outlive a crash after it
        with self.timer.phase("checkpoint", exclude_from_training=True):
            return save_checkpoint(self.run_dir / "checkpoints", updates, state, self.spec.cfg.train.keep_checkpoints)

    def progress(
        self, env_steps: int, updates: int, scalars: Callable[[], dict[str, float | None]], force: bool = False
    ) -> None:
        """Every train.log_every_s: one progress line on the terminal and a TensorBoard point per tag; `scalars`
        is only called then."""
        now = time.perf_counter()
        if not force and now < self.next_log:
            return
        self.next_log = now + self.spec.cfg.train.log_every_s
        train_s = max(self.timer.train_s, 1e-9)
        ret = f"{np.mean(self.recent_returns):6.3f}" if self.recent_returns else "   n/a"
        succ = "n/a" if self.last_success is None else f"{self.last_success:.3f}"
        log.info(
            f"env_steps {env_steps:>9,}  updates {updates:>6,}  return {ret}  greedy_success {succ}  "
            f"env_steps/s {env_steps / train_s:8.0f}  t {train_s:6.1f}s"
        )
        values = {
            M.EPISODIC_RETURN: float(np.mean(self.recent_returns)) if self.recent_returns else None,
            M.SPS: env_steps / train_s,
            **scalars(),
        }
        values.update({M.TIMERS + name: total for name, total in self.timer.totals.items()})
        self.writer.scalars(values, env_steps)

    def finish(self, net: QNetwork, counts: dict, extra: dict, stopped_by: str | None = None) -> dict:
        """Final held-out evaluation, summary.json, TensorBoard closed. `counts` holds env_steps, episodes,
        learner_updates, transitions_trained; `extra` anything mode-specific."""
        train_s = max(self.timer.train_s, 1e-9)
        final = full_eval(self.spec, net)
        if self.baseline_eval is not None:
            final["baseline"] = self.baseline_eval
        self.tracker.record(final, train_s, counts["learner_updates"])
        self.writer.greedy_samples(final["samples"], counts["env_steps"])
        self.writer.scalars({M.TIMERS + name: total for name, total in self.timer.totals.items()}, counts["env_steps"])
        summary = {
            "mode": self.mode,
            "config": self.config_name,
            "stopped_by": stopped_by,  # a signal's name when SIGINT or SIGTERM ended the run early
            "task": self.spec.task.name,
            **counts,
            "wall_time_s": round(self.timer.wall_s, 3),
            "train_time_s": round(train_s, 3),
            "time_to_target_s": self.tracker.time_to_target_s,
            "updates_to_target": self.tracker.updates_to_target,
            "env_steps_per_s": round(counts["env_steps"] / train_s, 1),
            "transitions_trained_per_s": round(counts["transitions_trained"] / train_s, 1),
            **extra,
            "timers": {k: round(v, 3) for k, v in self.timer.totals.items()},
            "eval": final,
            "eval_history": self.tracker.history,
        }
        write_json(self.run_dir / "summary.json", summary)
        self.writer.close()
        if self.loss_log is not None:
            self.loss_log.close()
        return summary
