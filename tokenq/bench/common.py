"""What every benchmark of tokenq/bench shares: the article network's shape, model FLOPs, the timing rule, the
rollout loops, synthetic learner batches and the table printer. Imports nothing else of tokenq/bench, so that the
benchmarks import it and not one another."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from learner.learner import Learner
from learner.model import QNetConfig, QNetwork
from replay.episodes import SampledBatch

ARTICLE_PROMPT_LEN, ARTICLE_STEPS = 8, 16
ARTICLE_CFG = QNetConfig(
    vocab_size=10_000,
    d_model=256,
    n_heads=8,
    n_layers=6,
    n_enc_layers=6,
    arch="encdec",
    max_prompt_len=ARTICLE_PROMPT_LEN,
    max_gen_len=ARTICLE_STEPS,
)
ARTICLE_OVERRIDES = [
    "model.d_model=256",
    "model.n_heads=8",
    "model.n_layers=6",
    "model.arch=encdec",
    "model.n_enc_layers=6",
]


def run_spec(preset: str, overrides: list[str] | None = None):
    # Imported here: the config needs yaml (see the module-level imports).
    from tokenq.build import build_spec
    from tokenq.config import load_config

    return build_spec(load_config(preset, overrides))


# --- FLOPs -------------------------------------------------------------------------------------------------------


def forward_flops(cfg: QNetConfig, batch: int, prompt_len: int, steps: int) -> int:
    """Matmul FLOPs of one QNetwork.forward scoring `steps` positions of `batch` episodes (module docstring)."""
    d, f, V, P, T = cfg.d_model, cfg.mlp_ratio, cfg.vocab_size, prompt_len, steps
    block = (8 + 4 * f) * d * d  # per token: self-attention projections and MLP
    head = 2 * d * V + 2 * d * (int(cfg.q_head in ("dueling", "dueling_max")) + int(cfg.copy_head))
    if cfg.arch == "encdec":
        encoder = cfg.n_enc_layers * (P * block + 4 * P * P * d)
        decoder = cfg.n_layers * (T * (block + 4 * d * d) + 4 * T * T * d + 4 * P * d * d + 4 * T * P * d)
        per_episode = encoder + decoder + T * head
    else:
        L = P + T
        per_episode = cfg.n_layers * (L * block + 4 * L * L * d) + T * head
    return batch * per_episode


def update_flops(cfg: QNetConfig, batch: int, prompt_len: int, steps: int) -> int:
    """One Double-DQN update: online forward + backward (3 F) and target forward (F)."""
    return 4 * forward_flops(cfg, batch, prompt_len, steps)


# FlopCounterMode has no formula for the CPU kernel of scaled_dot_product_attention; it is the same computation.
_CPU_SDPA = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *_, **__: sdpa_flop_count(q, k, v),
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: (
        lambda grad, q, k, v, *_, **__: sdpa_backward_flop_count(grad, q, k, v)
    ),
}


def counted_update_flops(learner: Learner, batch: SampledBatch) -> int:
    """FLOPs torch.utils.flop_counter counts in one `learner.update(batch)` (it changes the learner's weights)."""
    with FlopCounterMode(display=False, custom_mapping=_CPU_SDPA) as counter:
        learner.update(batch)
    return counter.get_total_flops()


# --- timing ------------------------------------------------------------------------------------------------------


def timed(fn, reps: int, rounds: int = 3) -> float:
    """Seconds per call after a warm-up call: the best of `rounds` rounds' means over `reps` calls in all. The best
    round is the one least disturbed by other processes sharing the cores."""
    fn()
    rounds = min(rounds, reps)
    per_round = max(1, reps // rounds)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            fn()
        best = min(best, (time.perf_counter() - t0) / per_round)
    return best


def wall(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_matmul(reps: int, sizes: tuple[int, ...] = (1024, 2048)) -> dict:
    """The machine's fp32 matmul ceiling: the best single multiplication over sizes and repetitions."""
    best = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        seconds = timed(lambda: torch.matmul(a, b), reps, rounds=reps)
        best[f"machine.matmul_gflops_{n}"] = 2 * n**3 / seconds / 1e9
    return {"machine.matmul_gflops": max(best.values()), **best}


# --- rollout -----------------------------------------------------------------------------------------------------


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


# --- learner -----------------------------------------------------------------------------------------------------


def full_batch(batch: int, prompt_len: int, steps: int, vocab: int, rng: np.random.Generator) -> SampledBatch:
    """Full-length episodes of random non-special tokens (no EOS): the largest learner batch of this shape."""
    return SampledBatch(
        rng.integers(4, vocab, size=(batch, prompt_len)),
        rng.integers(4, vocab, size=(batch, steps)),
        rng.random((batch, steps)).astype(np.float32),
        np.full(batch, steps),
        np.ones(batch, np.float32),
        np.arange(batch),
        np.arange(batch),
    )


def print_table(figures: dict) -> None:
    """One `key  value` line per figure; booleans as PASS/FAIL."""
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        if isinstance(value, bool):
            text = "PASS" if value else "FAIL"
        elif isinstance(value, float):
            text = f"{value:,.4g}" if abs(value) < 100 else f"{value:,.1f}"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        print(f"{key:<{width}}  {text:>16}")
