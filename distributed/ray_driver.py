"""`--mode local` (the default) and cluster runs: Ape-X on Ray.

The driver starts (or joins) Ray, places one learner, S replay shards, N rollout actors and a weight store, then
loops over timed phases: collect rollouts and relaunch actors, feed the learner its samples-per-insert allowance,
evaluate, checkpoint, report. Algorithm work happens in the actors; the driver only schedules and records.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.policy import ape_x_epsilons
from distributed import metrics as M
from distributed.codec import unpack_weights
from distributed.components import RunSpec, StopRequest, write_json
from distributed.config import Config, ConfigError
from distributed.ray_actors import LearnerActor, ReplayShardActor, RolloutActor, WeightStoreActor, actor_names
from distributed.recorder import RunRecorder
from distributed.replay import ReplayShard
from distributed.serial import beta_at, checkpoint_state, learner_scalars
from learner.checkpoint import latest_checkpoint, load_checkpoint
from learner.model import QNetwork

log = logging.getLogger("tokenq")


def start_ray(cfg: Config, address: str | None) -> tuple[bool, str]:
    """Join the cluster at `address` / RAY_ADDRESS, or start a local instance sized for this job.

    Returns (whether this call connected, and so disconnects at the end, "cluster" or "local"). Locally the CPU
    resource is at least what the job asks for: actor processes share the cores, which is what local
    multi-process mode means.
    """
    address = address or os.environ.get("RAY_ADDRESS")
    mode = "cluster" if address else "local"
    if ray.is_initialized():  # a caller (a test session, a notebook) already holds a Ray connection
        return False, mode
    if address:
        ray.init(address=address, log_to_driver=True)
        return True, mode
    wanted = cfg.actors.num_actors * cfg.actors.num_cpus + 1
    ray.init(
        num_cpus=max(os.cpu_count() or 1, int(wanted + 0.999)),
        include_dashboard=False,
        log_to_driver=True,
        dashboard_host="127.0.0.1",
    )
    return True, mode


def check_snapshots(cfg: Config, spec: RunSpec, snapshot_dir: Path) -> None:
    """Read every existing shard snapshot here first, so a corrupt or misfit one is one clear error, not a shard
    that dies in its constructor."""
    per_shard = cfg.replay.capacity // cfg.replay.num_shards
    for i in range(cfg.replay.num_shards):
        path = snapshot_dir / f"shard-{i}.snap"
        if path.exists():
            ReplayShard(per_shard, spec.task.prompt_len, spec.task.max_steps).load_snapshot(path)


class ApeXRun:
    """Handles to the Ray actors of one run, and the counters the driver keeps about them."""

    def __init__(self, cfg: Config, spec: RunSpec, snapshot_dir: Path | None = None):
        self.cfg, config = cfg, cfg.to_dict()
        task, seed = spec.task, cfg.train.seed
        per_shard = cfg.replay.capacity // cfg.replay.num_shards
        self.names = actor_names(f"run-{uuid.uuid4().hex[:8]}", cfg.replay.num_shards)
        ns = self.names["namespace"]
        self.store = WeightStoreActor.options(name=self.names["store"], namespace=ns).remote()
        # The learner takes a GPU when the cluster has one; the shards go beside it (node affinity), so
        # sampling and priority updates stay on one node; rollout actors spread over the nodes.
        use_gpu = ray.cluster_resources().get("GPU", 0) >= 1 and cfg.learner.device != "cpu"
        self.make_learner = lambda: LearnerActor.options(num_gpus=1 if use_gpu else 0, num_cpus=1).remote(
            config, self.names, seed
        )
        self.learner = self.make_learner()
        placement = "DEFAULT"
        if len([n for n in ray.nodes() if n["Alive"]]) > 1:
            learner_node = ray.get(self.learner.where.remote())["node_id"]
            placement = NodeAffinitySchedulingStrategy(node_id=learner_node, soft=False)
        # Shards restart like actors do, from their newest snapshot in the run directory.
        self.shards = [
            ReplayShardActor.options(
                name=self.names["shards"][i], namespace=ns, scheduling_strategy=placement, max_restarts=-1
            ).remote(
                per_shard,
                task.prompt_len,
                task.max_steps,
                cfg.replay.alpha,
                seed + 100 + i,
                cfg.replay.priority_eps,
                str(snapshot_dir.resolve()) if snapshot_dir else "",
                f"shard-{i}",
                cfg.replay.snapshot_every_s,
            )
            for i in range(cfg.replay.num_shards)
        ]
        stats = ray.get([sh.stats.remote() for sh in self.shards])  # all live
        self.shard_nodes = {w["node_id"] for w in stats}
        self.shard_pids = [w["pid"] for w in stats]
        self.shard_starts = sum(w.get("starts", 1) for w in stats)  # later starts are restarts
        self.epsilons = ape_x_epsilons(cfg.actors.epsilon, cfg.actors.epsilon_alpha, cfg.actors.num_actors)
        self.actors = [self._make_actor(config, i) for i in range(cfg.actors.num_actors)]
        self.nodes: set[str] = set()
        self.learner_node = ""  # set by wait_ready

    def _make_actor(self, config: dict, i: int):
        # Ray restarts a dead actor process (its constructor runs again and pulls the newest weights).
        return RolloutActor.options(
            num_cpus=self.cfg.actors.num_cpus, max_restarts=-1, scheduling_strategy="SPREAD"
        ).remote(config, i, self.epsilons[i], self.names, self.cfg.train.seed + 1000 * (i + 1))

    def wait_ready(self, timeout_s: float = 300.0) -> dict:
        try:
            where = ray.get([a.where.remote() for a in self.actors] + [self.learner.where.remote()], timeout=timeout_s)
        except GetTimeoutError:
            need = self.cfg.actors.num_actors * self.cfg.actors.num_cpus + 1
            have = ray.cluster_resources().get("CPU", 0)
            raise ConfigError(
                f"the actors could not be placed within {timeout_s:.0f}s: the job asks for {need:g} CPUs "
                f"(actors.num_actors x actors.num_cpus + 1 for the learner) and the cluster has {have:g}"
            ) from None
        self.nodes.update(w["node_id"] for w in where[:-1])
        self.learner_node = where[-1]["node_id"]
        self.pids = {"learner": where[-1]["pid"], "actors": [w["pid"] for w in where[:-1]]}
        return where[-1]

    def processes(self) -> dict:
        """The process ids of the run's actors as started (restarted ones get new ids), written to the run
        directory so an operator can find a process."""
        return {**self.pids, "shards": self.shard_pids}


def train_distributed(
    cfg: Config,
    run_dir: Path,
    config_name: str,
    spec: RunSpec,
    address: str | None = None,
    resume: dict | None = None,
) -> dict:
    """Run Ape-X on Ray. `resume` is a loaded checkpoint of this run directory to continue from; the shards then
    come back from their snapshots in RUN_DIR/replay."""
    snapshot_dir = Path(run_dir) / "replay"
    if resume is None:  # a new run starts empty, even over the snapshots of an attempt that never checkpointed
        shutil.rmtree(snapshot_dir, ignore_errors=True)
    check_snapshots(cfg, spec, snapshot_dir)
    started, mode = start_ray(cfg, address)
    torch.set_num_threads(1)  # the driver only evaluates; leave the cores to actors and learner
    try:
        t0 = time.perf_counter()
        run = ApeXRun(cfg, spec, snapshot_dir)
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
        with StopRequest() as stop_request:
            return _drive(cfg, run_dir, config_name, spec, run, mode, resume, stop_request)
    finally:
        if started:
            ray.shutdown()


def _drive(
    cfg: Config,
    run_dir: Path,
    config_name: str,
    spec: RunSpec,
    run: ApeXRun,
    mode: str,
    resume: dict | None,
    stop_request: StopRequest,
) -> dict:
    rec = RunRecorder(spec, run_dir, config_name, mode=mode, eval_pauses_training=False)
    timer = rec.timer
    eval_net = QNetwork(spec.net_cfg).eval()

    def load_newest_weights() -> int:
        """The store's newest weights into eval_net; returns their version."""
        version, (weights_ref,) = ray.get(run.store.latest.remote(-1))
        eval_net.load_state_dict(unpack_weights(ray.get(weights_ref)))
        return version

    if cfg.init.from_run and resume is None:  # the learner published its warm-start weights: evaluate them once
        load_newest_weights()
        rec.baseline(eval_net)
    spi = cfg.replay.samples_per_insert
    # Actors may run ahead of the learner by at most one round of calls per actor (Reverb-style error buffer).
    slack = spi * cfg.actors.num_actors * cfg.actors.batches_per_call * cfg.actors.batch_size * spec.task.max_steps
    c = {
        "env_steps": 0,
        "episodes": 0,
        "inserted_after_start": 0,
        "push_lost": 0,
        "actor_restarts": 0,
        "learner_restarts": 0,
    }
    updates = trained = 0
    if resume is not None:
        c.update({k: int(v) for k, v in resume["counters"].items() if k in c})
        updates, trained = int(resume["learner"]["updates"]), int(resume["learner"]["transitions_trained"])
        rec.load_state(resume["counters"]["recorder"], updates)
        log.info("resumed from update %d (%d env steps)", updates, c["env_steps"])
    learning = c["inserted_after_start"] > 0
    actor_calls: dict = {}  # ref -> actor index
    learner_call = None
    metrics: dict[str, float] = {}
    faults = {"nonfinite_updates": 0, "rollbacks": 0, "lost_samples": 0}
    learner_time = {"busy_s": 0.0, "wait_s": 0.0}  # inside train calls; wait_s: blocked on a sample from replay
    versions: dict[int, int] = {}
    epsilon_mean = sum(run.epsilons) / len(run.epsilons)
    next_eval = (updates // cfg.train.eval_every + 1) * cfg.train.eval_every
    next_ckpt = (updates // cfg.train.checkpoint_every + 1) * cfg.train.checkpoint_every
    stop = False
    processes = run.processes()
    write_json(Path(run_dir) / "processes.json", processes)
    pids = {i: {pid} for i, pid in enumerate(processes["actors"])}  # every process id seen per rollout actor
    restarts_before, down = c["actor_restarts"], set()

    def launch(i: int) -> None:
        actor_calls[run.actors[i].run.remote(cfg.actors.batches_per_call)] = i

    def restart_learner(err: RayActorError) -> tuple[int, int]:
        """A learner call failed with an actor error. If the learner process died, start a new one from the newest
        checkpoint (its updates since are lost, the replay is not). Returns the learner's (updates, transitions
        trained)."""
        if isinstance(err, RayTaskError):  # a call the learner made failed (a dying shard); the learner lives on
            log.warning("a learner call failed on another actor's death (%s); it is called again", str(err)[:200])
            return updates, trained
        c["learner_restarts"] += 1
        path = latest_checkpoint(Path(run_dir) / "checkpoints")
        state = load_checkpoint(path)["learner"] if path else None
        log.warning("the learner died (%r); restarting it from %s", str(err)[:300], path or "its initial weights")
        run.learner = run.make_learner()
        ray.get(run.learner.load_state.remote(state))
        processes["learner"] = ray.get(run.learner.where.remote())["pid"]
        write_json(Path(run_dir) / "processes.json", processes)
        return (int(state["updates"]), int(state["transitions_trained"])) if state else (0, 0)

    def learner_state() -> dict:
        while True:
            try:
                return ray.get(run.learner.state_dict.remote())
            except RayActorError as err:
                nonlocal updates, trained
                updates, trained = restart_learner(err)

    def checkpoint() -> None:
        state = learner_state()
        rec.checkpoint(updates, checkpoint_state(cfg, state, {**c, "recorder": rec.state()}))

    last_shards = {"lost": 0, "restarts": 0, "size": 0, "lost_window_s": 0.0}

    def shard_faults(retry_s: float = 0.0) -> dict:
        """Loss, restarts and size over the shards; while a shard is restarting, the last figures (or, with
        `retry_s`, wait for it that long)."""
        deadline = time.perf_counter() + retry_s
        while True:
            try:
                stats = ray.get([sh.stats.remote() for sh in run.shards])
                break
            except RayActorError:
                if time.perf_counter() > deadline:
                    return dict(last_shards)
                time.sleep(0.5)
        last_shards.update(
            lost=sum(st.get("lost", 0) for st in stats),
            restarts=sum(st.get("starts", 1) for st in stats) - run.shard_starts,
            size=sum(st["size_transitions"] for st in stats),
            lost_window_s=max(st.get("lost_window_s", 0.0) for st in stats),
        )
        return dict(last_shards)

    def actor_result(i: int, ref) -> dict | None:
        """A rollout call's result, or None when its actor died (Ray restarts it; the new process id counts it)."""
        try:
            stats = ray.get(ref)
        except RayActorError:
            if i not in down:
                log.warning("rollout actor %d died or is restarting; Ray restarts it", i)
                down.add(i)
            return None
        down.discard(i)
        pids.setdefault(i, set()).add(stats["pid"])
        c["actor_restarts"] = restarts_before + sum(len(p) - 1 for p in pids.values())
        return stats

    def record_rollout(i: int, stats: dict | None) -> None:
        nonlocal learning
        if stats is None:
            return
        c["env_steps"] += stats["transitions"]
        c["episodes"] += stats["episodes"]
        c["push_lost"] += stats["push_lost"]
        rec.episodes(stats["returns"])
        versions[i] = stats["weights_version"]
        run.nodes.add(stats["node_id"])
        if learning:
            c["inserted_after_start"] += stats["transitions"]
        elif c["episodes"] >= cfg.replay.learning_starts:
            learning = True

    def record_learner(out: dict) -> None:
        nonlocal updates, trained, metrics
        updates, trained = out["updates"], out["transitions_trained"]
        metrics = out["metrics"] or metrics
        faults["nonfinite_updates"], faults["rollbacks"] = out["nonfinite_updates"], out["rollbacks"]
        faults["lost_samples"] += out["lost_samples"]
        learner_time["busy_s"] += out["busy_s"]
        learner_time["wait_s"] += out["wait_s"]

    for i in range(len(run.actors)):
        launch(i)
    idle = set()
    while not stop and not stop_request and updates < cfg.train.total_updates and timer.train_s < cfg.train.max_seconds:
        pending = list(actor_calls) + ([learner_call] if learner_call is not None else [])
        ready, _ = ray.wait(pending, num_returns=1, timeout=0.1)
        # 1. Collect finished rollout calls; a dead actor is restarted by Ray and counted here.
        with timer.phase("collect_rollouts"):
            for ref in [r for r in ready if r in actor_calls]:
                i = actor_calls.pop(ref)
                record_rollout(i, actor_result(i, ref))
                idle.add(i)
            # Rate limit: relaunch actors only while the learner's backlog stays within the slack.
            for i in sorted(idle):
                if not learning or spi * c["inserted_after_start"] - trained < slack:
                    launch(i)
                    idle.discard(i)
        # 2. Learner: take its results, hand it the allowance the samples-per-insert ratio gives.
        with timer.phase("learn"):
            if learner_call is not None and learner_call in ready:
                ref, learner_call = learner_call, None
                try:
                    record_learner(ray.get(ref))
                except RayActorError as err:
                    updates, trained = restart_learner(err)
            budget = spi * c["inserted_after_start"] - trained
            if learner_call is None and learning and budget > 0:
                chunk = min(cfg.train.publish_every, cfg.train.total_updates - updates)
                learner_call = run.learner.train.remote(chunk, budget, beta_at(cfg, updates))
        # 3. Evaluate the newest published weights on held-out prompts (training goes on meanwhile).
        if updates >= next_eval:
            next_eval = (updates // cfg.train.eval_every + 1) * cfg.train.eval_every
            stop = rec.evaluate(eval_net, load_newest_weights(), c["env_steps"]) and cfg.train.stop_at_target
        # 4. Checkpoint.
        if updates >= next_ckpt:
            next_ckpt = (updates // cfg.train.checkpoint_every + 1) * cfg.train.checkpoint_every
            checkpoint()
        # 5. Report.
        train_s = max(timer.train_s, 1e-9)
        rec.progress(
            c["env_steps"],
            updates,
            lambda: {
                **learner_scalars(metrics),
                M.EPSILON: epsilon_mean,
                M.UPDATES_PER_S: updates / train_s,
                M.TRANSITIONS_PER_S: trained / train_s,
                M.SAMPLES_PER_INSERT: trained / max(c["inserted_after_start"], 1),
                M.WEIGHTS_VERSION: updates,
                M.ACTOR_LAG: updates - min(versions.values()) if versions else None,
                M.ACTOR_RESTARTS: c["actor_restarts"],
                M.NONFINITE_UPDATES: faults["nonfinite_updates"],
                M.ROLLBACKS: faults["rollbacks"],
                **_shard_scalars(shard_faults(), c["push_lost"]),
            },
        )

    if stop_request:
        log.warning("stopping on %s: final checkpoint, replay snapshots and summary", stop_request.name)
    # Let in-flight work finish, then record the final state.
    if learner_call is not None:
        try:
            record_learner(ray.get(learner_call))
        except RayActorError as err:
            updates, trained = restart_learner(err)
    for ref, i in list(actor_calls.items()):
        record_rollout(i, actor_result(i, ref))
    shards = shard_faults(retry_s=120.0)  # a shard that is still restarting comes back first
    ray.get([sh.snapshot.remote() for sh in run.shards])
    checkpoint()
    eval_net.load_state_dict(learner_state()["online"])
    counts = {
        "env_steps": c["env_steps"],
        "episodes": c["episodes"],
        "learner_updates": updates,
        "transitions_trained": trained,
    }
    extra = {
        "num_actors": cfg.actors.num_actors,
        "num_shards": cfg.replay.num_shards,
        "weights_version": ray.get(run.store.current_version.remote()),
        "actor_restarts": c["actor_restarts"],
        "shard_restarts": shards["restarts"],
        "learner_restarts": c["learner_restarts"],
        # Transitions generated but not in replay: held by a shard process that died after its last snapshot,
        # or in a push to a shard as it died.
        "replay_transitions_lost": shards["lost"] + c["push_lost"],
        "replay_transitions_lost_in_shards": shards["lost"],
        "replay_transitions_lost_in_pushes": c["push_lost"],
        # How long the shard-held losses had taken to insert: under replay.snapshot_every_s by construction.
        "replay_lost_window_s": round(shards["lost_window_s"], 3),
        "samples_lost": faults["lost_samples"],
        "nonfinite_updates": faults["nonfinite_updates"],
        "rollbacks": faults["rollbacks"],
        "resumed_from_updates": None if resume is None else int(resume["learner"]["updates"]),
        "nodes": sorted(run.nodes),
        "learner_node": run.learner_node,
        "shard_nodes": sorted(run.shard_nodes),
        "actor_epsilons": run.epsilons,
        "replay_transitions": shards["size"],
        "num_parameters": eval_net.num_parameters(),
        "final_losses": metrics,
        # Where the learner's time went: busy inside train calls (waiting on samples included), per update.
        "learner_busy_s": round(learner_time["busy_s"], 3),
        "learner_wait_s": round(learner_time["wait_s"], 3),
        "learner_ms_per_update": round(1000 * learner_time["busy_s"] / max(updates, 1), 2),
    }
    return rec.finish(eval_net, counts, extra, stopped_by=stop_request.name)


def _shard_scalars(shards: dict, push_lost: int) -> dict:
    return {
        M.REPLAY_SIZE: shards["size"],
        M.SHARD_RESTARTS: shards["restarts"],
        M.TRANSITIONS_LOST: shards["lost"] + push_lost,
    }
