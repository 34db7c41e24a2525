"""Ape-X on Ray: the driver of `--mode local` (the default) and of cluster runs.

The driver starts (or joins) Ray and places one learner, S replay shards, N rollout actors, a weight store and an
evaluation actor (distributed/launch.py). Then it only supervises, evaluates, records and stops: the actors and the
learner run free, the replay's rate limiter keeps them in balance, and the learner publishes and checkpoints on its
own. The driver is off the data path. Its loop reads as numbered phases, each timed: supervise (restart what died),
evaluate (collect the evaluation actor's results), report (progress line, TensorBoard, the counters the learner
stores in its checkpoints).

It is handed what it runs, and imports nothing from the application: a config object (read by attribute), the
run's task shape and network config (a `spec`), factories for the hosted workers, learner and evaluator, and a
recorder that owns the run directory, TensorBoard and evaluation records.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from distributed.codec import weights_tensors
from distributed.factories import HostFactories
from distributed.launch import ApeXRun, check_snapshots, start_ray
from distributed.progress import DriverCounters, limiter_summary, shard_totals
from distributed.summary import DistributedTotals, RunTotals
from learner.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint

log = logging.getLogger("tokenq")


def train_distributed(
    cfg,
    spec,
    rec,
    hosts: HostFactories,
    address: str | None = None,
    resume: Checkpoint | None = None,
    stop_request: Any = None,
) -> dict:
    """Run Ape-X on Ray and return the summary. `spec` gives `task.prompt_len`, `task.max_steps`, `net_cfg` and
    `acting_network()` (the network of the baseline and final evaluations); `rec` is the run's recorder; `resume`
    is a loaded checkpoint of this run directory to continue from (the shards then come back from their snapshots
    in RUN_DIR/replay); `stop_request` is true once the run should stop."""
    snapshot_dir = rec.run_dir / "replay"
    if resume is None:  # a new run starts empty, even over the snapshots of an attempt that never checkpointed
        shutil.rmtree(snapshot_dir, ignore_errors=True)
    check_snapshots(cfg, spec.task.prompt_len, spec.task.max_steps, snapshot_dir)
    started = start_ray(cfg.actors.num_actors * cfg.actors.num_cpus + 1, address)
    torch.set_num_threads(1)  # the driver only supervises; leave the cores to actors and learner
    run = None
    try:
        t0 = time.perf_counter()
        run = ApeXRun(cfg, spec.task.prompt_len, spec.task.max_steps, hosts, snapshot_dir, rec.run_dir / "checkpoints")
        learner_where = run.wait_ready()
        if resume is not None:
            ray.get(run.learner.load_state.remote(resume.learner))
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
        elif run is not None:
            run.shutdown()


def user_error(err: RayTaskError) -> Exception | None:
    """The exception a remote call raised, when it is one the user can act on (a diverged learner, a reward
    function that raised): re-raised by the driver as the run's error."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, Exception) and not isinstance(cause, RayError) else None


class ApeXDriver:
    """The driver loop: one method per numbered phase (RLlib's training step), its counts in DriverCounters."""

    def __init__(self, cfg, spec, run: ApeXRun, rec, resume: Checkpoint | None, stop_request: Any):
        self.cfg, self.spec, self.run_, self.rec, self.resume = cfg, spec, run, rec, resume
        self.stop_request = stop_request
        self.eval_net = spec.acting_network().eval()
        self.c = DriverCounters(num_actors=cfg.actors.num_actors)
        self.stop = False  # set when an evaluation reaches the target with train.stop_at_target
        self.actor_runs: dict = {}  # run ref -> actor index
        self.learner_run = None
        self.eval_call = None
        self.learner_done = False
        self.epsilon_mean = sum(run.epsilons) / len(run.epsilons)
        self.next_report = 0.0

    # --- set-up and shared helpers -------------------------------------------------------------------------------

    def _start(self) -> None:
        cfg, c = self.cfg, self.c
        self.rec.timer.restart()  # starting Ray and placing the actors is not training time
        if (cfg.init.from_run or cfg.init.from_hf) and self.resume is None:  # evaluate the published warm start
            weights_ref, _ = ray.get(self.run_.store.latest.remote(-1)).payload
            self.eval_net.load_state_dict(weights_tensors(ray.get(weights_ref)))
            self.rec.baseline(self.eval_net)
        if self.resume is not None:
            c.load_state(self.resume.counters)
            c.updates = c.published_version = self.resume.updates
            c.trained = int(self.resume.learner["transitions_trained"])
            if self.resume.recorder is not None:  # None: checkpointed before the driver's first counters came
                self.rec.load_state(self.resume.recorder, c.updates)
            log.info("resumed from update %d (%d env steps)", c.updates, c.env_steps)
        self.next_eval = (c.updates // cfg.train.eval_every + 1) * cfg.train.eval_every
        self.processes = self.run_.processes()
        self.rec.write_json("processes.json", self.processes)
        self._send_driver_state()

    def _running(self) -> bool:
        return (
            not self.stop
            and not self.stop_request
            and not self.learner_done
            and self.rec.timer.train_s < self.cfg.train.max_seconds
        )

    def _send_driver_state(self) -> None:
        self.run_.learner.set_driver_state.remote(self.c.state(), self.rec.state())

    def _restart_learner(self, err: Exception) -> None:
        """The learner process died: start a new one (same placement rules) from the newest checkpoint; its updates
        since are lost, the replay is not."""
        c, run = self.c, self.run_
        c.learner_restarts += 1
        c.learner_replaced()
        path = latest_checkpoint(self.rec.run_dir / "checkpoints")
        state = load_checkpoint(path).learner if path else None
        log.warning("the learner died (%s); restarting it from %s", str(err)[:300], path or "its initial weights")
        run.learner = run.make_learner()
        ray.get(run.learner.load_state.remote(state))
        self.processes["learner"] = ray.get(run.learner.where.remote())["pid"]
        self.rec.write_json("processes.json", self.processes)
        c.updates, c.trained = (int(state["updates"]), int(state["transitions_trained"])) if state else (0, 0)
        c.published_version = c.updates
        self._send_driver_state()
        self.learner_run = run.learner.run.remote()

    # --- the loop ------------------------------------------------------------------------------------------------

    def run(self) -> dict:
        self._start()
        self.actor_runs = {a.run.remote(): i for i, a in enumerate(self.run_.actors)}
        self.learner_run = self.run_.learner.run.remote()
        while self._running():
            pending = [*self.actor_runs, self.learner_run] + ([self.eval_call] if self.eval_call else [])
            ready, _ = ray.wait(pending, num_returns=1, timeout=0.25)
            with self.rec.timer.phase("supervise"):
                self.supervise(ready)
            with self.rec.timer.phase("evaluate_record"):
                self.evaluate(ready)
            with self.rec.timer.phase("report"):
                self.report()
        return self.finish()

    def supervise(self, ready: list) -> None:
        """1. A rollout actor or the learner whose loop ended: Ray restarts a dead actor process (its loop is started
        again and the restart counted); a dead learner is replaced from the newest checkpoint; a learner that
        reached train.total_updates ends the run."""
        for ref in [r for r in ready if r in self.actor_runs]:
            i = self.actor_runs.pop(ref)
            try:
                self.c.actor(i, ray.get(ref))
            except RayActorError:
                log.warning("rollout actor %d died; Ray restarts it", i)
                self.c.actor_restarts += 1
            except RayTaskError as err:
                raise (user_error(err) or err) from None
            self.actor_runs[self.run_.actors[i].run.remote()] = i
        if self.learner_run in ready:
            ref, self.learner_run = self.learner_run, None
            try:
                self.c.learner(ray.get(ref))
                self.learner_done = True
            except RayActorError as err:
                self._restart_learner(err)
            except RayTaskError as err:
                raise (user_error(err) or err) from None

    def evaluate(self, ready: list) -> None:
        """2. The evaluation actor's result, on the newest published weights once they reach the next
        train.eval_every; time_to_target counts the training time at which those weights were published."""
        if self.run_.evaluator is None:
            return
        if self.eval_call is not None and self.eval_call in ready:
            ref, self.eval_call = self.eval_call, None
            try:
                got = ray.get(ref)
            except RayActorError:
                got = None  # Ray restarts the evaluator; asked again below
            if got is not None:
                published_s = max(0.0, self.rec.timer.train_s - (time.time() - got["published_at"]))
                reached = self.rec.record_eval(got["result"], got["version"], self.c.env_steps, published_s)
                self.next_eval = (got["version"] // self.cfg.train.eval_every + 1) * self.cfg.train.eval_every
                self.stop = reached and self.cfg.train.stop_at_target
        if self.eval_call is None and not self.stop:
            self.eval_call = self.run_.evaluator.evaluate.remote(self.next_eval)

    def report(self, force: bool = False) -> None:
        """3. Every train.log_every_s: the actors' and learner's progress, the progress line and TensorBoard
        scalars, and the driver's counters to the learner (stored in its next checkpoint)."""
        now = time.perf_counter()
        if not force and now < self.next_report:
            return
        self.next_report = now + min(self.cfg.train.log_every_s, 1.0)
        c = self.c
        for i, progress in self._poll(self.run_.actors):
            self.rec.episodes(c.actor(i, progress))
            self.run_.nodes.add(progress["node_id"])
        for _, progress in self._poll([self.run_.learner]):
            c.learner(progress)
        self._send_driver_state()
        train_s = max(self.rec.timer.train_s, 1e-9)
        self.rec.progress(
            c.env_steps,
            c.updates,
            c.metrics,
            lambda: {
                "epsilon": self.epsilon_mean,
                "updates_per_s": c.updates / train_s,
                "transitions_per_s": c.trained / train_s,
                "weights_version": c.published_version,
                "actor_lag": c.updates - min(c.versions.values()) if c.versions else None,
                "nonfinite_updates": c.nonfinite_updates,
                "rollbacks": c.rollbacks,
                "learner_idle_frac": c.learner_idle_frac,
                "episode_lag_mean": c.lag_mean,
                "episode_lag_max": c.lag_max,
                "sample_age_s": c.age_s,
                **self._shard_scalars(self._shards()),
            },
            force=force,
        )

    def _poll(self, handles: list, timeout_s: float = 5.0) -> list[tuple[int, dict]]:
        """(index, progress) of every handle that answered within `timeout_s` (a restarting one is skipped)."""
        refs = [h.progress.remote() for h in handles]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        out = []
        for i, ref in enumerate(refs):
            if ref in ready:
                try:
                    out.append((i, ray.get(ref)))
                except RayError:
                    pass
        return out

    def _shards(self, retry_s: float = 0.0) -> dict:
        """The shards' figures summed, and the rate limiter's; while a shard or the limiter is restarting, the last
        figures (or wait up to `retry_s`)."""
        deadline = time.perf_counter() + retry_s
        while True:
            try:
                *stats, limiter = ray.get(
                    [sh.stats.remote() for sh in self.run_.shards] + [self.run_.limiter.stats.remote()],
                    timeout=max(retry_s, 5.0),
                )
                break
            except (RayActorError, GetTimeoutError):
                if time.perf_counter() > deadline:
                    return dict(self.c.shards)
                time.sleep(0.5)
        self.c.shards = shard_totals(stats, self.run_.shard_starts, limiter)
        return dict(self.c.shards)

    def _shard_scalars(self, shards: dict) -> dict:
        return {
            "replay_size": shards["size"],
            "samples_per_insert": shards["samples_per_insert"],
            "insert_blocked_s": shards["insert_blocked_s"],
            "sample_blocked_s": shards["sample_blocked_s"],
            "actor_restarts": self.c.actor_restarts,
            "shard_restarts": shards["restarts"],
            "replay_transitions_lost": shards["lost"] + self.c.push_lost,
        }

    def _target_weights(self) -> tuple[int, dict] | None:
        """(version, weights) that the evaluation reaching the target evaluated: the evaluation actor's last, since
        no evaluation is asked for after it. None (with a warning) if the actor restarted and lost them."""
        try:
            got = ray.get(self.run_.evaluator.evaluated_weights.remote(), timeout=60)
        except (RayError, GetTimeoutError):
            got = None
        if got is None:
            log.warning("the weights that reached the target are gone; the run ends on the learner's last ones")
            return None
        log.info(
            "stopped at the target: the final networks are version %d's, not the %d updates made since",
            got[0],
            self.c.updates - got[0],
        )
        return got

    def finish(self) -> dict:
        """Stop the actors and the learner, then record the final state: checkpoint, snapshots, summary."""
        cfg, c, run = self.cfg, self.c, self.run_
        if self.stop_request:
            log.warning("stopping on %s: final checkpoint, replay snapshots and summary", self.stop_request.name)
        run.learner.stop.remote()
        for a in run.actors:
            a.stop.remote()
        ready, _ = ray.wait(list(self.actor_runs), num_returns=len(self.actor_runs), timeout=60.0)
        for ref in ready:  # each actor's final totals
            try:
                self.rec.episodes(c.actor(self.actor_runs[ref], ray.get(ref)))
            except RayError:
                pass
        self.report(force=True)  # also hands the learner the final counters for its final checkpoint
        rewind = self._target_weights() if self.stop else None
        while True:  # the final checkpoint (a learner that dies now is replaced from its checkpoint first)
            try:
                final = ray.get(run.learner.finish.remote(rewind))
                break
            except RayActorError as err:
                self._restart_learner(err)
                run.learner.stop.remote()
        for _, progress in self._poll([run.learner]):
            c.learner(progress)
        shards = self._shards(retry_s=120.0)  # a shard that is still restarting comes back first
        ray.get([sh.snapshot.remote() for sh in run.shards])
        self.eval_net.load_state_dict(weights_tensors(final["online"]))
        totals = RunTotals(
            env_steps=c.env_steps,
            episodes=c.episodes,
            learner_updates=c.updates,
            transitions_trained=c.trained,
            num_actors=cfg.actors.num_actors,
            num_shards=cfg.replay.num_shards,
            weights_version=ray.get(run.store.current_version.remote()),
            # With train.stop_at_target the version that reached the target, otherwise the learner's last update.
            final_weights_version=final["weights_version"],
            actor_restarts=c.actor_restarts,
            replay_transitions_lost=shards["lost"] + c.push_lost,
            nonfinite_updates=c.nonfinite_updates,
            rollbacks=c.rollbacks,
            resumed_from_updates=None if self.resume is None else self.resume.updates,
            nodes=sorted(run.nodes),
            num_parameters=self.eval_net.num_parameters(),
            **ray.get(run.learner.weights_info.remote()),
            final_losses=c.metrics,
            **c.staleness_summary(),
            distributed=DistributedTotals(
                shard_restarts=shards["restarts"],
                learner_restarts=c.learner_restarts,
                replay_transitions_lost_in_shards=shards["lost"],
                replay_transitions_lost_in_pushes=c.push_lost,
                replay_lost_window_s=round(shards["lost_window_s"], 3),
                samples_lost=c.lost_samples,
                learner_node=run.learner_node,
                shard_nodes=sorted(run.shard_nodes),
                actor_epsilons=run.epsilons,
                replay_transitions=shards["size"],
                **c.learner_summary(),
                **limiter_summary(shards),
            ),
        )
        stopped_by = self.stop_request.name if self.stop_request else None
        return self.rec.finish(self.eval_net, totals, stopped_by=stopped_by)
