"""`tokenq bench`: throughput figures measured in one run on this machine, against the ceiling this machine shows.

Prints a table and writes flat dotted keys (no assertions; `goals.*` only report pass/fail):

- `machine.matmul_gflops`: the ceiling, fp32 square `torch.matmul` at this process's torch threads, the best of a
  few repetitions over sizes 1024 and 2048;
- `rollout.tokens_per_s_kv`, `rollout.tokens_per_s_naive`: 64 new tokens for 32 sequences, with the KV cache vs
  recomputing the whole prefix at every step;
- `learner.*`: the small preset, `reverse` (its own network and episode shape, 32 episodes per update);
  `learner.article.*`: the article's network (ARTICLE_CFG: vocab 10000, d_model 256, 8 heads, 6 + 6 layers, encdec)
  on synthetic 8-token prompts and 16-token episodes, 32 per update, through the same `Learner.update`. Each has
  `transitions_per_s_sequence` (whole-sequence TD: one forward pass per network per batch of episodes),
  `transitions_per_s_per_transition` (DQN-style batches of single transitions read off padded prefixes),
  `flops_per_update` (analytic, below), `flops_per_update_counted` (FlopCounterMode on one update) and
  `achieved_gflops` = flops_per_update / measured seconds per update;
- `replay.*`: insert and sample rates and storage bytes per transition of one shard on `reverse` episodes;
- `weights.publish_to_actor_s`: article-sized network on a local Ray instance: from the learner's publish of version
  v to every rollout actor (2, synthetic) holding v; the median of a few publications (`tokenq bench --scale` gives
  it at 1, 8 and 32 actors);
- `system.*`: short real `reverse` runs. `system.serial_*` from `train_serial`; `system.env_steps_per_s_1_actor` and
  `_2_actors` from `train_local` with actors.num_actors = 1 and 2; `system.transitions_trained_per_s` is the
  2-actor local run's (the default actor count).
- `goals.NAME.value`, `.target`, `.pass`: each goal's measured figure or ratio against its target (GOALS); the
  whole-sequence goal uses the `reverse` figures (`learner.article.sequence_speedup` is reported beside them).

Model FLOPs of one Double-DQN update (`update_flops`), counting matmuls only (2 FLOPs per multiply-add), with
d = d_model, f = mlp_ratio, V = vocab, B episodes, P prompt tokens and T steps per episode:
  per token of a block:   8 d^2 (q, kv, proj) + 4 f d^2 (MLP), plus 4 d^2 for cross-attention's q and proj;
  per attention:          4 Tq Tk d (scores and values; the full square, causal or not, as FlopCounterMode counts);
  cross-attention memory: 4 d^2 per prompt token per decoder layer (its keys and values);
  head:                   2 d V per output position (+ 2 d each for the dueling value and the copy gate).
  encdec:  F = B [n_enc (P (8 + 4f) d^2 + 4 P^2 d) + n_layers (T (12 + 4f) d^2 + 4 T^2 d + 4 P d^2 + 4 T P d)
               + 2 T d V]
  decoder: F = B [n_layers (L (8 + 4f) d^2 + 4 L^2 d) + 2 T d V],  L = P + T
  update  = 4 F: the online forward (F), its backward (2 F: gradients of inputs and of weights), the target
  forward (F, no grad). The decoder reads T positions: the start token and a_0..a_{T-2}.
Achieved GFLOP/s use this analytic count. FlopCounterMode's count of one update is 0.1-0.7% higher: it also counts
the attention scores the flash-attention backward recomputes, which are hardware work, not model FLOPs.

Times are the best of a few rounds (`timed` in tokenq/bench/common.py), the round least disturbed by other
processes; `machine.loadavg_start` and `_end` show how busy the cores were. On a 2-core machine another busy
process can slow the 2-thread torch figures many times over, so read them with the load average.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

# Module level: the standard library, torch, numpy, and repository modules that need only those (yaml, ray,
# msgpack, replay/shard.py are imported inside the function that uses it).
import numpy as np
import torch
import torch.nn.functional as F

from learner.learner import Learner, LearnerConfig
from learner.model import QNetConfig, QNetwork
from tokenq.bench.common import (
    ARTICLE_CFG,
    ARTICLE_PROMPT_LEN,
    ARTICLE_STEPS,
    bench_matmul,
    counted_update_flops,
    full_batch,
    print_table,
    rollout_kv,
    rollout_naive,
    run_spec,
    timed,
    update_flops,
)

log = logging.getLogger("tokenq")

ROLLOUT_CFG = QNetConfig(
    vocab_size=12, d_model=128, n_heads=4, n_layers=2, n_enc_layers=2, max_prompt_len=8, max_gen_len=64
)
# The article preset's network (PRESETS["article"]) with keywords-task episode shapes: a few prompt tokens, 16 steps.


def bench_rollout(reps: int, batch: int = 32, steps: int = 64) -> dict:
    torch.manual_seed(0)
    net = QNetwork(ROLLOUT_CFG).eval()
    prompts = torch.randint(4, 12, (batch, ROLLOUT_CFG.max_prompt_len))
    assert torch.equal(rollout_kv(net, prompts, 8), rollout_naive(net, prompts, 8))
    kv = timed(lambda: rollout_kv(net, prompts, steps), reps)
    naive = timed(lambda: rollout_naive(net, prompts, steps), max(1, reps // 2))
    return {
        "rollout.tokens_per_s_kv": batch * steps / kv,
        "rollout.tokens_per_s_naive": batch * steps / naive,
        "rollout.kv_speedup": naive / kv,
    }


def per_transition_update(learner: Learner, prompts, prefixes, t, a, r, done) -> float:
    """One-step Double DQN on B single transitions (s_t, a_t, r_t, s_{t+1}): one forward pass per network per
    transition batch, each row's Q read at its own position of a padded prefix (causal attention makes the padding
    invisible). Q(s_t) and Q(s_{t+1}) come from the same online pass, as they would in a fair DQN baseline."""
    rows = torch.arange(len(t))
    with learner.autocast:
        q_online = learner.online(prompts, prefixes).float()  # (B, T+1, V)
        with torch.no_grad():
            q_target = learner.target(prompts, prefixes).float()  # (B, T+1, V)
    q_t = q_online[rows, t].gather(-1, a[:, None]).squeeze(-1)
    with torch.no_grad():
        a_star = q_online[rows, t + 1].argmax(-1, keepdim=True)
        y = r + learner.cfg.gamma * q_target[rows, t + 1].gather(-1, a_star).squeeze(-1) * (~done)
    loss = F.huber_loss(q_t, y)
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    learner.optimizer.step()
    return float(loss.detach())


def bench_learner(net_cfg: QNetConfig, prompt_len: int, steps: int, reps: int, prefix: str, batch: int = 32) -> dict:
    """Whole-sequence vs per-transition updates of `batch` full episodes; model FLOPs analytic and counted."""
    learner = Learner(LearnerConfig(n_step=1, device="cpu"), net_cfg)
    rng = np.random.default_rng(0)
    seq = full_batch(batch, prompt_len, steps, net_cfg.vocab_size, rng)
    per_update = timed(lambda: learner.update(seq), reps)
    flops = update_flops(net_cfg, batch, prompt_len, steps)
    counted = counted_update_flops(learner, seq)
    # Per-transition: B transitions drawn from the same kind of episodes; row i's state s_t is actions[i, :t].
    prompts, prefixes = torch.as_tensor(seq.prompts), torch.as_tensor(seq.actions)
    t = torch.as_tensor(rng.integers(0, steps, size=batch))
    a = prefixes[torch.arange(batch), t]
    r = torch.as_tensor(seq.rewards)[torch.arange(batch), t]
    done = t == steps - 1
    per_transition = timed(lambda: per_transition_update(learner, prompts, prefixes, t, a, r, done), reps)
    seq_tps, trans_tps = batch * steps / per_update, batch / per_transition
    return {
        f"{prefix}.transitions_per_s_sequence": seq_tps,
        f"{prefix}.transitions_per_s_per_transition": trans_tps,
        f"{prefix}.sequence_speedup": seq_tps / trans_tps,
        f"{prefix}.update_ms": 1000 * per_update,
        f"{prefix}.flops_per_update": flops,
        f"{prefix}.flops_per_update_counted": counted,
        f"{prefix}.achieved_gflops": flops / per_update / 1e9,
    }


def bench_learners(reps: int) -> dict:
    """The small preset (`reverse`) under `learner.*`, the article's network under `learner.article.*`."""
    spec = run_spec("reverse")
    small = bench_learner(spec.net_cfg, spec.task.prompt_len, spec.task.max_steps, reps * 20, "learner")
    return {**small, **bench_learner(ARTICLE_CFG, ARTICLE_PROMPT_LEN, ARTICLE_STEPS, reps, "learner.article")}


# --- replay ------------------------------------------------------------------------------------------------------


def bench_replay(reps: int, capacity: int = 50_000) -> dict:
    """One shard on `reverse`-shaped episodes: insert and sample rates, and storage bytes per stored transition."""
    from replay.episodes import EpisodeBatch
    from replay.shard import ReplayShard

    task = run_spec("reverse").task
    shard = ReplayShard(capacity, task.prompt_len, task.max_steps, alpha=0.6, seed=0)
    rng = np.random.default_rng(0)
    b = full_batch(256, task.prompt_len, task.max_steps, task.vocab_size, rng)
    batch = EpisodeBatch(b.prompts, b.actions, b.rewards, b.lengths, priorities=rng.random(256))
    n_inserts = max(1, 2 * capacity // 256)  # fill the shard twice over: eviction included
    t0 = time.perf_counter()
    for _ in range(n_inserts):
        shard.add(batch)
    insert_s = time.perf_counter() - t0
    sampled = 0
    t0 = time.perf_counter()
    for _ in range(reps * 20):
        sampled += int(shard.sample(32, 0.4).lengths.sum())
    sample_s = time.perf_counter() - t0
    return {
        "replay.insert_transitions_per_s": n_inserts * batch.num_transitions / insert_s,
        "replay.sample_transitions_per_s": sampled / sample_s,
        "replay.bytes_per_transition": shard.nbytes / shard.num_transitions,
    }


# --- Ray: weight publication and whole runs ----------------------------------------------------------------------


def bench_publish(reps: int, num_actors: int = 2) -> dict:
    """Publish-to-holding latency of the article-sized network on the real hosts (tokenq/bench/scale.py). Needs
    Ray initialised."""
    from tokenq.bench.scale import publish_time

    return {
        "weights.publish_to_actor_s": publish_time(num_actors, reps),
        "weights.megabytes": sum(w.nbytes for w in QNetwork(ARTICLE_CFG).state_dict().values()) / 1e6,
    }


def _train_overrides(seconds: float) -> list[str]:
    # Time-bound: no evaluation or checkpoint before the end, so the rates are training alone.
    never = ("total_updates", "eval_every", "checkpoint_every")
    return [f"train.max_seconds={seconds}", *(f"train.{key}={10**6}" for key in never)]


def bench_serial(seconds: float) -> dict:
    from tokenq.serial import train_serial

    spec = run_spec("reverse", _train_overrides(seconds))
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train_serial(spec.cfg, Path(run_dir), "reverse", spec)
    return {
        "system.serial_env_steps_per_s": summary["env_steps_per_s"],
        "system.serial_transitions_trained_per_s": summary["transitions_trained_per_s"],
    }


def bench_distributed(seconds: float) -> dict:
    """Local Ape-X runs with 1 and 2 rollout actors, on the Ray instance this process holds."""
    from tokenq.local import train_local

    out = {}
    for n in (1, 2):
        spec = run_spec("reverse", [*_train_overrides(seconds), f"actors.num_actors={n}"])
        with tempfile.TemporaryDirectory() as run_dir:
            summary = train_local(spec.cfg, Path(run_dir), "reverse", spec)
        suffix = "1_actor" if n == 1 else f"{n}_actors"
        out[f"system.env_steps_per_s_{suffix}"] = summary["env_steps_per_s"]
        out[f"system.transitions_trained_per_s_{suffix}"] = summary["transitions_trained_per_s"]
    out["system.transitions_trained_per_s"] = out["system.transitions_trained_per_s_2_actors"]
    return out


def bench_ray(publish_reps: int, seconds: float) -> dict:
    """Weight publication and the local runs on one local Ray instance (started here unless one is connected)."""
    import ray

    started = not ray.is_initialized()
    temp_dir = tempfile.mkdtemp(prefix="tqb", dir="/tmp")  # short: Ray's socket paths have a length limit
    if started:
        ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    threads = torch.get_num_threads()  # train_local leaves the driver with one thread
    try:
        return {**bench_publish(publish_reps), **bench_distributed(seconds)}
    finally:
        torch.set_num_threads(threads)
        if started:
            ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


# --- goals -------------------------------------------------------------------------------------------------------

# name: (numerator key, denominator key or None, "min" or "max", target)
GOALS = {
    "kv_over_naive": ("rollout.tokens_per_s_kv", "rollout.tokens_per_s_naive", "min", 5.0),
    "sequence_over_per_transition": (
        "learner.transitions_per_s_sequence",
        "learner.transitions_per_s_per_transition",
        "min",
        5.0,
    ),
    "article_flops_utilisation": ("learner.article.achieved_gflops", "machine.matmul_gflops", "min", 0.30),
    "two_over_one_actor": ("system.env_steps_per_s_2_actors", "system.env_steps_per_s_1_actor", "min", 1.7),
    "local_over_serial": ("system.env_steps_per_s_2_actors", "system.serial_env_steps_per_s", "min", 1.5),
    "replay_insert": ("replay.insert_transitions_per_s", None, "min", 200_000.0),
    "replay_sample": ("replay.sample_transitions_per_s", None, "min", 200_000.0),
    "publish_to_actor_s": ("weights.publish_to_actor_s", None, "max", 1.0),
    "serial_env_steps": ("system.serial_env_steps_per_s", None, "min", 8000.0),
    "serial_transitions_trained": ("system.serial_transitions_trained_per_s", None, "min", 25_000.0),
}


def goals(figures: dict) -> dict:
    """`goals.NAME.value/target/pass` for every goal whose figures were measured."""
    out = {}
    for name, (num, den, kind, target) in GOALS.items():
        if num not in figures or (den is not None and den not in figures):
            continue
        value = figures[num] / figures[den] if den else figures[num]
        out[f"goals.{name}.value"] = value
        out[f"goals.{name}.target"] = target
        out[f"goals.{name}.pass"] = bool(value >= target if kind == "min" else value <= target)
    return out


def _bench_hf(reps: int) -> dict:
    """hf.* figures when the Hugging Face extra is installed; none otherwise."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        log.info("bench: no hf.* figures (the Hugging Face extra is not installed)")
        return {}
    from tokenq.bench.hf import bench_hf

    return bench_hf(reps)


def run_bench(quick: bool = False, out: Path | None = None) -> dict:
    reps = 3 if quick else 10
    # The 1-minute load average before and after: other processes on the cores make every figure lower.
    figures = {
        "torch_threads": torch.get_num_threads(),
        "machine.cpu_count": os.cpu_count(),
        "machine.loadavg_start": os.getloadavg()[0],
    }
    steps = [
        ("matmul", lambda: bench_matmul(reps)),
        ("rollout", lambda: bench_rollout(reps)),
        ("learner", lambda: bench_learners(reps)),
        ("replay", lambda: bench_replay(reps)),
        ("Hugging Face", lambda: _bench_hf(reps)),
        ("serial run", lambda: bench_serial(12.0 if quick else 45.0)),
        ("Ray", lambda: bench_ray(3 if quick else 7, 12.0 if quick else 45.0)),
    ]
    for name, step in steps:
        t0 = time.perf_counter()
        figures.update(step())
        log.info("bench: %s measured in %.1fs", name, time.perf_counter() - t0)
    figures["machine.loadavg_end"] = os.getloadavg()[0]
    figures.update(goals(figures))
    print_table(figures)
    if out is not None:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
    return figures
