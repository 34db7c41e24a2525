"""`tokenq bench`: throughput figures measured in one run on this machine. Prints a table; no assertions.

- rollout: tokens/s generating 64 new tokens for 32 sequences, with the KV cache vs recomputing the whole prefix
  at every step;
- learner: transitions trained/s with whole-sequence TD (one forward pass per network per batch of episodes)
  vs one forward pass per transition (DQN-style batches of single transitions, padded prefixes).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from distributed.components import build_spec
from distributed.config import load_config
from distributed.replay import SampledBatch
from learner.learner import Learner, LearnerConfig
from learner.model import QNetConfig, QNetwork

log = logging.getLogger("tokenq")

ROLLOUT_CFG = QNetConfig(
    vocab_size=12, d_model=128, n_heads=4, n_layers=2, n_enc_layers=2, max_prompt_len=8, max_gen_len=64
)


def _timed(fn, reps: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


@torch.no_grad()
def rollout_kv(net: QNetwork, prompts: torch.Tensor, steps: int) -> torch.Tensor:
    q, cache = net.start(prompts, steps)
    out = []
    for _ in range(steps):
        a = q.argmax(-1)
        out.append(a)
        q = net.step(a, cache)
    return torch.stack(out, 1)


@torch.no_grad()
def rollout_naive(net: QNetwork, prompts: torch.Tensor, steps: int) -> torch.Tensor:
    actions = prompts.new_zeros((len(prompts), 0))
    for _ in range(steps):
        a = net(prompts, actions)[:, -1].argmax(-1)
        actions = torch.cat([actions, a[:, None]], 1)
    return actions


def bench_rollout(reps: int, batch: int = 32, steps: int = 64) -> dict:
    torch.manual_seed(0)
    net = QNetwork(ROLLOUT_CFG).eval()
    prompts = torch.randint(4, 12, (batch, ROLLOUT_CFG.max_prompt_len))
    assert torch.equal(rollout_kv(net, prompts, 8), rollout_naive(net, prompts, 8))
    kv = _timed(lambda: rollout_kv(net, prompts, steps), reps)
    naive = _timed(lambda: rollout_naive(net, prompts, steps), max(1, reps // 2))
    return {
        "rollout.tokens_per_s_kv": batch * steps / kv,
        "rollout.tokens_per_s_naive": batch * steps / naive,
        "rollout.kv_speedup": naive / kv,
    }


def _full_batch(spec, batch: int, rng: np.random.Generator) -> SampledBatch:
    """Full-length episodes of random tokens (no EOS), the shape a learner batch has on `reverse`."""
    T, V = spec.task.max_steps, spec.task.vocab_size
    actions = rng.integers(4, V, size=(batch, T))
    return SampledBatch(
        spec.task.sample_prompts(rng, batch),
        actions,
        rng.random((batch, T)).astype(np.float32),
        np.full(batch, T),
        np.ones(batch, np.float32),
        np.arange(batch),
        np.arange(batch),
    )


def per_transition_update(learner: Learner, prompts, prefixes, t, a, r, done) -> float:
    """One-step Double DQN on B single transitions: a forward pass per network per transition batch, each row's
    Q read at its own position of a padded prefix (causal attention makes the padding invisible)."""
    rows = torch.arange(len(t))
    q_t = learner.online(prompts, prefixes)[rows, t].gather(-1, a[:, None]).squeeze(-1)
    with torch.no_grad():
        a_star = learner.online(prompts, prefixes)[rows, t + 1].argmax(-1, keepdim=True)
        q_next = learner.target(prompts, prefixes)[rows, t + 1].gather(-1, a_star).squeeze(-1)
        y = r + learner.cfg.gamma * q_next * (~done)
    loss = F.huber_loss(q_t, y)
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    learner.optimizer.step()
    return float(loss.detach())


def bench_learner(reps: int, batch: int = 32) -> dict:
    spec = build_spec(load_config("reverse"))
    learner = Learner(LearnerConfig(n_step=1), spec.net_cfg)
    rng = np.random.default_rng(0)
    seq = _full_batch(spec, batch, rng)
    per_update = _timed(lambda: learner.update(seq), reps)
    # Per-transition: B transitions (s_t, a_t, r_t, s_{t+1}) drawn from the same kind of episodes.
    T = spec.task.max_steps
    prompts = torch.as_tensor(seq.prompts)
    prefixes = torch.as_tensor(seq.actions)  # padded prefixes: row i's state s_t is actions[i, :t]
    t = torch.as_tensor(rng.integers(0, T, size=batch))
    a = prefixes[torch.arange(batch), t]
    r = torch.as_tensor(seq.rewards)[torch.arange(batch), t]
    done = t == T - 1
    per_transition = _timed(lambda: per_transition_update(learner, prompts, prefixes, t, a, r, done), reps)
    seq_tps = batch * T / per_update
    trans_tps = batch / per_transition
    return {
        "learner.transitions_per_s_sequence": seq_tps,
        "learner.transitions_per_s_per_transition": trans_tps,
        "learner.sequence_speedup": seq_tps / trans_tps,
    }


def bench_replay(reps: int, capacity: int = 50_000) -> dict:
    """One shard on `reverse`-shaped episodes: insert and sample rates, and storage bytes per stored transition."""
    from actors.rollout import EpisodeBatch
    from distributed.replay import ReplayShard

    spec = build_spec(load_config("reverse"))
    shard = ReplayShard(capacity, spec.task.prompt_len, spec.task.max_steps, alpha=0.6, seed=0)
    rng = np.random.default_rng(0)
    b = _full_batch(spec, 256, rng)
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


def run_bench(quick: bool = False, out: Path | None = None) -> dict:
    reps = 3 if quick else 10
    figures = {"torch_threads": torch.get_num_threads()}
    figures.update(bench_rollout(reps))
    figures.update(bench_learner(reps * 20))
    figures.update(bench_replay(reps))
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:>12,.1f}" if isinstance(value, float) else f"{key:<{width}}  {value:>12}")
    if out is not None:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
    return figures
