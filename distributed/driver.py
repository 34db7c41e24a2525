"""Ape-X on Ray: the driver of `--mode local` (the default) and of cluster runs.

The driver starts (or joins) Ray, places one learner, S replay shards, N rollout actors and a weight store, then
loops over numbered phases, each timed: collect rollouts and relaunch actors, feed the learner its
samples-per-insert allowance, evaluate, checkpoint, report. Algorithm work happens in the actors; the driver only
schedules and records.

It is handed what it runs, and imports nothing from the application: a config object (read by attribute), the
run's task shape and network config (a `spec`), factories for the hosted workers and learner, and a recorder that
owns the run directory, TensorBoard, evaluation and checkpoints. Placing the actors is distributed/launch.py's.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError, RayTaskError

from distributed.codec import unpack_weights
from distributed.launch import ApeXRun, HostFactories, check_snapshots, start_ray
from learner.checkpoint import latest_checkpoint, load_checkpoint
from replay.shard import beta_at

log = logging.getLogger("tokenq")


def train_distributed(
    cfg,
    spec,
    rec,
    hosts: HostFactories,
    address: str | None = None,
    resume: dict | None = None,
    stop_request: Any = None,
) -> dict:
    """Run Ape-X on Ray and return the summary. `spec` gives `task.prompt_len`, `task.max_steps`, `net_cfg` and
    `acting_network()` (the evaluation network);
    `rec` is the run's recorder; `resume` is a loaded checkpoint of this run directory to continue from (the shards
    then come back from their snapshots in RUN_DIR/replay); `stop_request` is true once the run should stop."""
    snapshot_dir = rec.run_dir / "replay"
    if resume is None:  # a new run starts empty, even over the snapshots of an attempt that never checkpointed
        shutil.rmtree(snapshot_dir, ignore_errors=True)
    check_snapshots(cfg, spec.task.prompt_len, spec.task.max_steps, snapshot_dir)
    started = start_ray(cfg.actors.num_actors * cfg.actors.num_cpus + 1, address)
    torch.set_num_threads(1)  # the driver only evaluates; leave the cores to actors and learner
    try:
        t0 = time.perf_counter()
        run = ApeXRun(cfg, spec.task.prompt_len, spec.task.max_steps, hosts, snapshot_dir)
        learner_where = run.wait_ready()
        if resume is not None:
            ray.get(run.learner.load_state.remote(resume["learner"]))
        log.info(
            "Ray: %d rollout actors, %d replay shards, learner on %s; ready in %.1fs",
            cfg.actors.num_actors,
            cfg.replay.num_shards,
            learner_where["device"],
            time.perf_counter() - t0,
        )
        return ApeXDriver(cfg, spec, run, rec, resume, stop_request).run()
    finally:
        if started:
            ray.shutdown()


@dataclass
class DriverCounters:
    """What the driver counts; checkpointed with the learner and restored on --resume."""

    env_steps: int = 0
    episodes: int = 0
    inserted_after_start: int = 0  # transitions inserted once learning started: the samples-per-insert base
    push_lost: int = 0
    actor_restarts: int = 0
    learner_restarts: int = 0
    # Not checkpointed: they come from the learner, or restart at zero.
    updates: int = 0
    trained: int = 0
    published_version: int = 0
    nonfinite_updates: int = 0
    rollbacks: int = 0
    lost_samples: int = 0
    learner_busy_s: float = 0.0  # inside train calls
    learner_wait_s: float = 0.0  # of which blocked on a sample from replay
    versions: dict[int, int] = field(default_factory=dict)  # actor index -> weights version it last acted with

    CHECKPOINTED = ("env_steps", "episodes", "inserted_after_start", "push_lost", "actor_restarts", "learner_restarts")

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.CHECKPOINTED}

    def load_state(self, state: dict) -> None:
        for k in self.CHECKPOINTED:
            if k in state:
                setattr(self, k, int(state[k]))


class ApeXDriver:
    """The driver loop: one method per numbered phase (RLlib's training step), its counts in DriverCounters."""

    def __init__(self, cfg, spec, run: ApeXRun, rec, resume: dict | None, stop_request: Any):
        self.cfg, self.spec, self.run_, self.rec, self.resume = cfg, spec, run, rec, resume
        self.stop_request = stop_request
        self.eval_net = spec.acting_network().eval()
        self.c = DriverCounters()
        self.metrics: dict[str, float] = {}
        self.learning = False
        self.stop = False
        self.actor_calls: dict = {}  # ref -> actor index
        self.learner_call = None
        self.idle: set[int] = set()
        self.down: set[int] = set()
        self.last_shards = {"lost": 0, "restarts": 0, "size": 0, "lost_window_s": 0.0}
        self.epsilon_mean = sum(run.epsilons) / len(run.epsilons)
        spi = cfg.replay.samples_per_insert
        # Actors may run ahead of the learner by at most one round of calls per actor (Reverb-style error buffer).
        a = cfg.actors
        self.slack = spi * a.num_actors * a.batches_per_call * a.batch_size * spec.task.max_steps

    # --- set-up and shared helpers -------------------------------------------------------------------------------

    def _start(self) -> None:
        cfg, c = self.cfg, self.c
        self.rec.timer.restart()  # starting Ray and placing the actors is not training time
        if (cfg.init.from_run or cfg.init.from_hf) and self.resume is None:  # evaluate the published warm start
            self._load_newest_weights()
            self.rec.baseline(self.eval_net)
        if self.resume is not None:
            counters = self.resume["counters"]
            c.load_state(counters)
            c.updates = c.published_version = int(self.resume["learner"]["updates"])
            c.trained = int(self.resume["learner"]["transitions_trained"])
            self.rec.load_state(counters["recorder"], c.updates)
            log.info("resumed from update %d (%d env steps)", c.updates, c.env_steps)
        self.learning = c.inserted_after_start > 0
        self.next_eval = (c.updates // cfg.train.eval_every + 1) * cfg.train.eval_every
        self.next_ckpt = (c.updates // cfg.train.checkpoint_every + 1) * cfg.train.checkpoint_every
        self.processes = self.run_.processes()
        self.rec.write_json("processes.json", self.processes)
        # every process id seen per rollout actor: a new one is a restart
        self.pids = {i: {pid} for i, pid in enumerate(self.processes["actors"])}
        self.restarts_before = c.actor_restarts

    def _load_newest_weights(self) -> int:
        """The store's newest weights into eval_net; returns their version."""
        version, (weights_ref,) = ray.get(self.run_.store.latest.remote(-1))
        self.eval_net.load_state_dict(unpack_weights(ray.get(weights_ref)))
        return version

    def _launch(self, i: int) -> None:
        self.actor_calls[self.run_.actors[i].run.remote(self.cfg.actors.batches_per_call)] = i

    def _running(self) -> bool:
        cfg = self.cfg
        return (
            not self.stop
            and not self.stop_request
            and self.c.updates < cfg.train.total_updates
            and self.rec.timer.train_s < cfg.train.max_seconds
        )

    def _restart_learner(self, err: RayActorError) -> None:
        """A learner call failed with an actor error. If the learner process died, start a new one from the newest
        checkpoint (its updates since are lost, the replay is not)."""
        if isinstance(err, RayTaskError):  # a call the learner made failed (a dying shard); the learner lives on
            log.warning("a learner call failed on another actor's death (%s); it is called again", str(err)[:200])
            return
        c, run = self.c, self.run_
        c.learner_restarts += 1
        path = latest_checkpoint(self.rec.run_dir / "checkpoints")
        state = load_checkpoint(path)["learner"] if path else None
        log.warning("the learner died (%r); restarting it from %s", str(err)[:300], path or "its initial weights")
        run.learner = run.make_learner()
        ray.get(run.learner.load_state.remote(state))
        self.processes["learner"] = ray.get(run.learner.where.remote())["pid"]
        self.rec.write_json("processes.json", self.processes)
        c.updates, c.trained = (int(state["updates"]), int(state["transitions_trained"])) if state else (0, 0)
        c.published_version = c.updates

    def _learner_state(self) -> dict:
        while True:
            try:
                return ray.get(self.run_.learner.state_dict.remote())
            except RayActorError as err:
                self._restart_learner(err)

    def _checkpoint(self) -> None:
        state = self._learner_state()
        self.rec.checkpoint(self.c.updates, state, {**self.c.state(), "recorder": self.rec.state()})

    def _shard_faults(self, retry_s: float = 0.0) -> dict:
        """Loss, restarts and size over the shards; while a shard is restarting, the last figures (or, with
        `retry_s`, wait for it that long)."""
        deadline = time.perf_counter() + retry_s
        while True:
            try:
                stats = ray.get([sh.stats.remote() for sh in self.run_.shards])
                break
            except RayActorError:
                if time.perf_counter() > deadline:
                    return dict(self.last_shards)
                time.sleep(0.5)
        self.last_shards.update(
            lost=sum(st.get("lost", 0) for st in stats),
            restarts=sum(st.get("starts", 1) for st in stats) - self.run_.shard_starts,
            size=sum(st["size_transitions"] for st in stats),
            lost_window_s=max(st.get("lost_window_s", 0.0) for st in stats),
        )
        return dict(self.last_shards)

    def _actor_result(self, i: int, ref) -> dict | None:
        """A rollout call's result, or None when its actor died (Ray restarts it; the new process id counts it)."""
        try:
            stats = ray.get(ref)
        except RayActorError:
            if i not in self.down:
                log.warning("rollout actor %d died or is restarting; Ray restarts it", i)
                self.down.add(i)
            return None
        self.down.discard(i)
        self.pids.setdefault(i, set()).add(stats["pid"])
        self.c.actor_restarts = self.restarts_before + sum(len(p) - 1 for p in self.pids.values())
        return stats

    def _record_rollout(self, i: int, stats: dict | None) -> None:
        if stats is None:
            return
        c = self.c
        c.env_steps += stats["transitions"]
        c.episodes += stats["episodes"]
        c.push_lost += stats["push_lost"]
        self.rec.episodes(stats["returns"])
        c.versions[i] = stats["weights_version"]
        self.run_.nodes.add(stats["node_id"])
        if self.learning:
            c.inserted_after_start += stats["transitions"]
        elif c.episodes >= self.cfg.replay.learning_starts:
            self.learning = True

    def _record_learner(self, ref) -> None:
        c = self.c
        try:
            out = ray.get(ref)
        except RayActorError as err:
            self._restart_learner(err)
            return
        c.updates, c.trained = out["updates"], out["transitions_trained"]
        c.published_version = out["published_version"]
        self.metrics = out["metrics"] or self.metrics
        c.nonfinite_updates, c.rollbacks = out["nonfinite_updates"], out["rollbacks"]
        c.lost_samples += out["lost_samples"]
        c.learner_busy_s += out["busy_s"]
        c.learner_wait_s += out["wait_s"]

    # --- the loop ------------------------------------------------------------------------------------------------

    def run(self) -> dict:
        self._start()
        for i in range(len(self.run_.actors)):
            self._launch(i)
        while self._running():
            pending = list(self.actor_calls) + ([self.learner_call] if self.learner_call is not None else [])
            ready, _ = ray.wait(pending, num_returns=1, timeout=0.1)
            with self.rec.timer.phase("collect_rollouts"):
                self.collect_rollouts(ready)
            with self.rec.timer.phase("learn"):
                self.learn(ready)
            self.evaluate()
            self.checkpoint()
            self.report()
        return self.finish()

    def collect_rollouts(self, ready: list) -> None:
        """1. Collect finished rollout calls (a dead actor is restarted by Ray and counted here), and relaunch
        actors only while the learner's backlog stays within the slack (the rate limit)."""
        for ref in [r for r in ready if r in self.actor_calls]:
            i = self.actor_calls.pop(ref)
            self._record_rollout(i, self._actor_result(i, ref))
            self.idle.add(i)
        spi = self.cfg.replay.samples_per_insert
        for i in sorted(self.idle):
            if not self.learning or spi * self.c.inserted_after_start - self.c.trained < self.slack:
                self._launch(i)
                self.idle.discard(i)

    def learn(self, ready: list) -> None:
        """2. Take the learner's results, and hand it the allowance the samples-per-insert ratio gives."""
        cfg, c = self.cfg, self.c
        if self.learner_call is not None and self.learner_call in ready:
            ref, self.learner_call = self.learner_call, None
            self._record_learner(ref)
        budget = cfg.replay.samples_per_insert * c.inserted_after_start - c.trained
        if self.learner_call is None and self.learning and budget > 0:
            chunk = min(cfg.train.publish_every, cfg.train.total_updates - c.updates)
            beta = beta_at(cfg.replay.beta, c.updates, cfg.train.total_updates)
            self.learner_call = self.run_.learner.train.remote(chunk, budget, beta)

    def evaluate(self) -> None:
        """3. Evaluate the newest published weights on held-out prompts (not counted as training time)."""
        cfg, c = self.cfg, self.c
        if c.updates >= self.next_eval:
            self.next_eval = (c.updates // cfg.train.eval_every + 1) * cfg.train.eval_every
            reached = self.rec.evaluate(self.eval_net, self._load_newest_weights(), c.env_steps)
            self.stop = reached and cfg.train.stop_at_target

    def checkpoint(self) -> None:
        """4. Checkpoint every train.checkpoint_every updates."""
        cfg, c = self.cfg, self.c
        if c.updates >= self.next_ckpt:
            self.next_ckpt = (c.updates // cfg.train.checkpoint_every + 1) * cfg.train.checkpoint_every
            self._checkpoint()

    def report(self) -> None:
        """5. The progress line and TensorBoard scalars, every train.log_every_s."""
        c = self.c
        train_s = max(self.rec.timer.train_s, 1e-9)
        self.rec.progress(
            c.env_steps,
            c.updates,
            self.metrics,
            lambda: {
                "epsilon": self.epsilon_mean,
                "updates_per_s": c.updates / train_s,
                "transitions_per_s": c.trained / train_s,
                "samples_per_insert": c.trained / max(c.inserted_after_start, 1),
                "weights_version": c.published_version,
                "actor_lag": c.updates - min(c.versions.values()) if c.versions else None,
                "nonfinite_updates": c.nonfinite_updates,
                "rollbacks": c.rollbacks,
                **self._shard_scalars(self._shard_faults()),
            },
        )

    def _shard_scalars(self, shards: dict) -> dict:
        return {
            "replay_size": shards["size"],
            "actor_restarts": self.c.actor_restarts,
            "shard_restarts": shards["restarts"],
            "replay_transitions_lost": shards["lost"] + self.c.push_lost,
        }

    def finish(self) -> dict:
        """Let in-flight work finish, then record the final state: checkpoint, snapshots, summary."""
        cfg, c, run = self.cfg, self.c, self.run_
        if self.stop_request:
            log.warning("stopping on %s: final checkpoint, replay snapshots and summary", self.stop_request.name)
        if self.learner_call is not None:
            self._record_learner(self.learner_call)
        for ref, i in list(self.actor_calls.items()):
            self._record_rollout(i, self._actor_result(i, ref))
        shards = self._shard_faults(retry_s=120.0)  # a shard that is still restarting comes back first
        ray.get([sh.snapshot.remote() for sh in run.shards])
        self._checkpoint()
        self.eval_net.load_state_dict(self._learner_state()["online"])
        counts = {
            "env_steps": c.env_steps,
            "episodes": c.episodes,
            "learner_updates": c.updates,
            "transitions_trained": c.trained,
        }
        extra = {
            "num_actors": cfg.actors.num_actors,
            "num_shards": cfg.replay.num_shards,
            "weights_version": ray.get(run.store.current_version.remote()),
            "actor_restarts": c.actor_restarts,
            "shard_restarts": shards["restarts"],
            "learner_restarts": c.learner_restarts,
            # Transitions generated but not in replay: held by a shard process that died after its last snapshot,
            # or in a push to a shard as it died.
            "replay_transitions_lost": shards["lost"] + c.push_lost,
            "replay_transitions_lost_in_shards": shards["lost"],
            "replay_transitions_lost_in_pushes": c.push_lost,
            # How long the shard-held losses had taken to insert: under replay.snapshot_every_s by construction.
            "replay_lost_window_s": round(shards["lost_window_s"], 3),
            "samples_lost": c.lost_samples,
            "nonfinite_updates": c.nonfinite_updates,
            "rollbacks": c.rollbacks,
            "resumed_from_updates": None if self.resume is None else int(self.resume["learner"]["updates"]),
            "nodes": sorted(run.nodes),
            "learner_node": run.learner_node,
            "shard_nodes": sorted(run.shard_nodes),
            "actor_epsilons": run.epsilons,
            "replay_transitions": shards["size"],
            "num_parameters": self.eval_net.num_parameters(),
            **ray.get(run.learner.weights_info.remote()),
            "final_losses": self.metrics,
            # Where the learner's time went: busy inside train calls (waiting on samples included), per update.
            "learner_busy_s": round(c.learner_busy_s, 3),
            "learner_wait_s": round(c.learner_wait_s, 3),
            "learner_ms_per_update": round(1000 * c.learner_busy_s / max(c.updates, 1), 2),
        }
        stopped_by = self.stop_request.name if self.stop_request else None
        return self.rec.finish(self.eval_net, counts, extra, stopped_by=stopped_by)
