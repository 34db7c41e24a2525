"""`tokenq bench --scale`: the Ape-X control plane at 1, 8 and 32 rollout actors on this machine.

The actors are synthetic: each pushes one pre-made batch of `reverse` episodes over and over and runs no network
(SyntheticWorker). The shards, their rate limiter, the learner host sampling from all shards with prefetch and
writing priorities back, the weight store and the Ray driver are the real ones (`train_distributed` with these
factories); only the learner's update is a no-op (NoOpLearner). Figures (flat dotted keys):

- `scale.actors_N.inserted_per_s`, `.sampled_per_s`: transitions inserted by the actors and sampled by the learner
  per second of the run, 4 shards; `.samples_per_insert`: the ratio the shards' limiters counted (the setting is
  SAMPLES_PER_INSERT); `.learner_idle_frac`.
- `scale.publish_N_actors_s`: from the learner's publish of the `article` network's weights (65 MB) to every one of
  N actors holding them (median of a few publications).
- `scale.driver_cpu_frac`: the driver process's CPU time over the run's wall time, at 32 actors.
"""

from __future__ import annotations

import functools
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from replay.episodes import EpisodeBatch

log = logging.getLogger("tokenq")

SAMPLES_PER_INSERT = 1.0
EPISODES_PER_PUSH = 1024  # a synthetic actor's batch: 1,024 reverse episodes, about 7,200 transitions
SCALE_OVERRIDES = [
    "replay.num_shards=4",
    f"replay.samples_per_insert={SAMPLES_PER_INSERT}",
    "replay.error_buffer=65536",
    "replay.min_size_to_sample=1024",
    "replay.capacity=100000",
    "replay.prefetch=4",
    "replay.snapshot_every_s=0",
    "learner.batch_size=2048",
    "actors.num_cpus=0",
    "actors.max_pushes_in_flight=2",
    "train.total_updates=1000000000",
    "train.eval_every=1000000000",
    "train.checkpoint_every=1000000000",
    "train.log_every_s=1",
]


class SyntheticWorker:
    """A rollout worker that generates nothing: it hands out one pre-made batch of episodes (with its weights
    version) and keeps the weights it is given."""

    def __init__(self, prompt_len: int, steps: int, epsilon: float, seed: int):
        rng = np.random.default_rng(seed)
        n = EPISODES_PER_PUSH
        lengths = rng.integers(steps // 2, steps + 1, size=n)
        self.batch = EpisodeBatch(
            rng.integers(4, 12, size=(n, prompt_len)),
            rng.integers(4, 12, size=(n, steps)),
            rng.random((n, steps)).astype(np.float32),
            lengths,
            priorities=rng.random(n),
        )
        self.epsilon, self.weights_version, self.weights = epsilon, -1, None

    def rollout(self) -> EpisodeBatch:
        self.batch.versions = np.full(len(self.batch.lengths), self.weights_version, dtype=np.int64)
        return self.batch

    def set_weights(self, weights: dict, version: int) -> None:
        self.weights, self.weights_version = weights, version  # held: the arrays stay mapped


class NoOpLearner:
    """The Learner's interface with an update that does nothing but count and hand back priorities. Its `online`
    network is the run's (for the driver's final evaluation) or, with `article`, the article network's weights."""

    def __init__(self, net: torch.nn.Module):
        self.online, self.device = net, torch.device("cpu")
        self.updates = self.transitions_trained = self.nonfinite_updates = self.rollbacks = 0

    def stage(self, batch):
        return batch

    def update(self, batch) -> tuple[None, np.ndarray]:
        self.updates += 1
        self.transitions_trained += int(batch.lengths.sum())
        return None, np.ones(len(batch.lengths), np.float32)

    def flush_metrics(self) -> None:
        return None

    def mark_good(self) -> dict:
        return self.state_dict()

    def state_dict(self, device: str | None = None) -> dict:
        return {"online": self.online.state_dict(), "updates": self.updates, "transitions_trained": 0}

    def load_state_dict(self, state: dict) -> None:
        pass

    def get_weights(self) -> dict:
        return self.online.state_dict()

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.online.parameters())


def _synthetic_worker(prompt_len: int, steps: int, epsilon: float, seed: int) -> SyntheticWorker:
    return SyntheticWorker(prompt_len, steps, epsilon, seed)


def _noop_learner(net_cfg, article: bool) -> NoOpLearner:
    from learner.model import make_network
    from tokenq.bench.common import ARTICLE_CFG

    return NoOpLearner(make_network(ARTICLE_CFG if article else net_cfg))


def factories(spec, article: bool = False):
    from distributed.factories import HostFactories

    return HostFactories(
        functools.partial(_synthetic_worker, spec.task.prompt_len, spec.task.max_steps),
        functools.partial(_noop_learner, spec.net_cfg, article),
    )


def control_plane(num_actors: int, seconds: float) -> dict:
    """One run of the real driver over synthetic actors and a no-op learner for `seconds` of training time."""
    from distributed.driver import train_distributed
    from tokenq.bench.common import run_spec
    from tokenq.recorder import RunRecorder

    spec = run_spec("reverse", [*SCALE_OVERRIDES, f"actors.num_actors={num_actors}", f"train.max_seconds={seconds}"])
    with tempfile.TemporaryDirectory() as run_dir:
        rec = RunRecorder(spec, Path(run_dir), "scale", mode="local")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = train_distributed(spec.cfg, spec, rec, factories(spec))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    train_s = summary["train_time_s"]
    key = f"scale.actors_{num_actors}"
    return {
        f"{key}.inserted_per_s": round(summary["env_steps"] / train_s, 1),
        f"{key}.sampled_per_s": round(summary["transitions_trained"] / train_s, 1),
        f"{key}.samples_per_insert": summary["samples_per_insert_measured"],
        f"{key}.learner_idle_frac": summary["learner_idle_frac"],
        f"{key}.updates": summary["learner_updates"],
        # The whole call (placing the actors and the final evaluation included): an upper bound of the loop's share.
        f"{key}.driver_cpu_frac": round(cpu / wall, 4),
    }


def publish_time(num_actors: int, reps: int = 3) -> float:
    """Median seconds from the learner's publication of the article network's weights until all `num_actors`
    synthetic actors hold them (on a Ray instance this process holds)."""
    import ray

    from distributed.launch import ApeXRun
    from tokenq.bench.common import run_spec

    spec = run_spec("reverse", [*SCALE_OVERRIDES, f"actors.num_actors={num_actors}", "train.publish_every=1000000000"])
    run = ApeXRun(spec.cfg, spec.task.prompt_len, spec.task.max_steps, factories(spec, article=True))
    run.wait_ready()
    loop = run.learner.run.remote()
    runs = [a.run.remote() for a in run.actors]
    times = []
    try:
        for _ in range(reps):
            time.sleep(0.5)
            t0 = time.perf_counter()
            version = ray.get(run.learner.publish.remote())
            while min(p["weights_version"] for p in ray.get([a.progress.remote() for a in run.actors])) < version:
                time.sleep(0.01)
            times.append(time.perf_counter() - t0)
    finally:
        for handle in [*run.actors, run.learner]:
            handle.stop.remote()
        ray.wait([loop, *runs], num_returns=len(runs) + 1, timeout=30)
        run.shutdown()
    return statistics.median(times)


def run_scale(actor_counts: tuple[int, ...] = (1, 8, 32), seconds: float = 20.0, out: Path | None = None) -> dict:
    import json

    import ray

    from tokenq.bench.common import print_table

    temp_dir = tempfile.mkdtemp(prefix="tqs", dir="/tmp")
    ray.init(num_cpus=max(actor_counts) + 2, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    figures: dict = {}
    try:
        for n in actor_counts:
            t0 = time.perf_counter()
            figures.update(control_plane(n, seconds))
            figures[f"scale.publish_{n}_actors_s"] = round(publish_time(n), 3)
            log.info("bench --scale: %d actors measured in %.1fs", n, time.perf_counter() - t0)
    finally:
        ray.shutdown()
    top = max(actor_counts)
    figures["scale.driver_cpu_frac"] = figures[f"scale.actors_{top}.driver_cpu_frac"]
    print_table(figures)
    if out is not None:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
    return figures
