"""What both drivers record: the run directory, TensorBoard, progress lines, evaluations, checkpoints, summary.

The serial runner builds one; the Ray driver (distributed/driver.py) is handed one. Evaluation and checkpoint time
is excluded from the training clock in both modes, so `time_to_target_s` means the same in each.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actors.text import WordTokenizer
from distributed.summary import RunTotals, Summary
from learner.checkpoint import Checkpoint
from learner.qfunction import QFunction
from tokenq import metrics as M
from tokenq.build import RunSpec
from tokenq.evaluation import full_eval, greedy_eval
from tokenq.run_dir import write_json

log = logging.getLogger("tokenq")
CHART_EVERY_S = 30.0  # the V/Q charts of evaluations during training, at most this often


class PhaseTimer:
    """Wall time per named driver phase (RLlib-style), and the training clock that excludes evaluation."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """Start the clocks now, from zero."""
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
            | {name: result[name] for name in (*M.EVAL_NAMES, *M.SAMPLED_NAMES) if name in result}
        )
        reached = result["success_rate"] is not None and result["success_rate"] >= self.target
        if reached and self.time_to_target_s is None:
            self.time_to_target_s, self.updates_to_target = round(train_s, 3), updates
        return reached


class RunRecorder:
    def __init__(self, spec: RunSpec, run_dir: Path, config_name: str, mode: str):
        self.spec, self.run_dir, self.config_name, self.mode = spec, Path(run_dir), config_name, mode
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / "config.json", spec.cfg.to_dict())
        write_json(self.run_dir / "run.json", {"mode": mode, "config": config_name})
        if isinstance(spec.task.tokenizer, WordTokenizer):  # a word vocabulary travels with the run that uses it
            spec.task.tokenizer.save(self.run_dir / "tokenizer.json")
        self.writer = M.MetricsWriter(str(self.run_dir / "tb"))
        self.writer.config(spec.cfg.to_dict())
        self.timer = PhaseTimer()
        self.tracker = EvalTracker(spec.cfg.task.target_success)
        self.recent_returns: deque[float] = deque(maxlen=200)
        self.last_success: float | None = None
        self.baseline_eval: dict | None = None
        self.next_chart = 0.0
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

    def td_losses(self, losses: list[tuple[int, float]]) -> None:
        """Every update's (update, TD loss), with train.loss_log (the golden resume test compares these)."""
        if self.loss_log is not None:
            self.loss_log.writelines(f"{updates}\t{loss!r}\n" for updates, loss in losses)

    def baseline(self, net: QFunction) -> None:
        """Evaluate the starting (warm-start) policy once, to report next to the final one."""
        with self.timer.phase("evaluate", exclude_from_training=True):
            self.baseline_eval = full_eval(self.spec, net, num_samples=2)

    def episodes(self, returns: list[float]) -> None:
        self.recent_returns.extend(returns)

    def evaluate(self, net: QFunction, updates: int, env_steps: int) -> bool:
        """Greedy evaluation on held-out prompts in this process (serial mode); True once success reached the target.
        Its time, charts included, is not training time."""
        with self.timer.phase("evaluate", exclude_from_training=True):
            result = greedy_eval(net, self.spec.task, self.spec.heldout, num_samples=4, policy=self.spec.policy)
            self._write_eval(result, env_steps)
        return self._track(result, updates, self.timer.train_s)

    def record_eval(self, result: dict, updates: int, env_steps: int, train_s: float) -> bool:
        """An evaluation made elsewhere (the evaluation actor) of the weights published at `updates`, `train_s`
        seconds into training; True once success reached the target."""
        self._write_eval(result, env_steps)
        return self._track(result, updates, train_s)

    def _write_eval(self, result: dict, env_steps: int) -> None:
        names = ("success_rate", *M.EVAL_NAMES, *M.SAMPLED_NAMES)
        evaluated = {name: result[name] for name in names if result.get(name) is not None}
        self.writer.scalars({M.TAGS[name]: value for name, value in evaluated.items()}, env_steps)
        # A chart costs about a tenth of a second: drawn at most every CHART_EVERY_S (always for the final one), so
        # that the Ray driver, whose time is training time, stays light.
        charts = time.perf_counter() >= self.next_chart
        if charts:
            self.next_chart = time.perf_counter() + CHART_EVERY_S
        self.writer.greedy_samples(result["samples"], env_steps, charts=charts)

    def _track(self, result: dict, updates: int, train_s: float) -> bool:
        self.last_success = result["success_rate"]
        return self.tracker.record(result, train_s, updates)

    def write_json(self, name: str, data: dict) -> None:
        write_json(self.run_dir / name, data)

    def checkpoint(self, ckpt: Checkpoint) -> Path:
        """Write a checkpoint in RUN_DIR/checkpoints (not training time), the losses logged up to it first."""
        if self.loss_log is not None:
            self.loss_log.flush()  # the losses up to a checkpoint outlive a crash after it
        with self.timer.phase("checkpoint", exclude_from_training=True):
            return ckpt.save(self.run_dir / "checkpoints", self.spec.cfg.train.keep_checkpoints)

    def progress(
        self,
        env_steps: int,
        updates: int,
        losses: dict[str, float],
        scalars: Callable[[], dict[str, float | None]],
        force: bool = False,
    ) -> None:
        """Every train.log_every_s: one progress line on the terminal and a TensorBoard point per tag. `losses` is
        the learner's latest metrics (a non-finite loss is shown, not dropped); `scalars` maps names of
        metrics.TAGS to values and is only called then."""
        now = time.perf_counter()
        if not force and now < self.next_log:
            return
        self.next_log = now + self.spec.cfg.train.log_every_s
        train_s = max(self.timer.train_s, 1e-9)
        ret = f"{np.mean(self.recent_returns):6.3f}" if self.recent_returns else "   n/a"
        succ = "n/a" if self.last_success is None else f"{self.last_success:.3f}"
        loss = losses.get("td_loss")
        log.info(
            f"env_steps {env_steps:>9,}  updates {updates:>6,}  return {ret}  greedy_success {succ}  "
            f"td_loss {'n/a' if loss is None else format(loss, '.4g'):>8}  "
            f"env_steps/s {env_steps / train_s:8.0f}  t {train_s:6.1f}s"
        )
        values = {
            "episodic_return": float(np.mean(self.recent_returns)) if self.recent_returns else None,
            "sps": env_steps / train_s,
            **{k: losses.get(k) for k in M.LOSS_NAMES},
            **scalars(),
        }
        self.writer.scalars({M.TAGS[name]: v for name, v in values.items()}, env_steps)
        self.writer.scalars({M.TIMERS + name: total for name, total in self.timer.totals.items()}, env_steps)

    def finish(self, net: QFunction, totals: RunTotals, stopped_by: str | None = None) -> dict:
        """Final held-out evaluation, summary.json, TensorBoard closed; returns summary.json's contents."""
        train_s = max(self.timer.train_s, 1e-9)
        final = full_eval(self.spec, net)
        if self.baseline_eval is not None:
            final["baseline"] = self.baseline_eval
        self.tracker.record(final, train_s, totals.learner_updates)
        self.writer.greedy_samples(final["samples"], totals.env_steps)
        self.writer.scalars({M.TIMERS + name: total for name, total in self.timer.totals.items()}, totals.env_steps)
        summary = Summary(
            mode=self.mode,
            config=self.config_name,
            stopped_by=stopped_by,
            task=self.spec.task.name,
            totals=totals,
            wall_time_s=round(self.timer.wall_s, 3),
            train_time_s=round(train_s, 3),
            time_to_target_s=self.tracker.time_to_target_s,
            updates_to_target=self.tracker.updates_to_target,
            env_steps_per_s=round(totals.env_steps / train_s, 1),
            transitions_trained_per_s=round(totals.transitions_trained / train_s, 1),
            timers={k: round(v, 3) for k, v in self.timer.totals.items()},
            eval=final,
            eval_history=self.tracker.history,
        ).to_dict()
        write_json(self.run_dir / "summary.json", summary)
        self.writer.close()
        if self.loss_log is not None:
            self.loss_log.close()
        return summary
