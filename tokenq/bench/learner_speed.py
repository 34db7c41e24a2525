"""Learner updates/s on a preset's network and batch shape, with or without torch.compile.

    python -m tokenq.bench.learner_speed [--compile] [--updates 300] [--threads 1] [--config reverse] [key=value ...]

Builds the learner exactly as a run does (the preset, `build_spec`, `Learner(cfg.learner, spec.net_cfg, seed=0)`)
and feeds it synthetic SampledBatches of the task's shape: `learner.batch_size` prompts of the task's length,
actions padded to its step limit, episode lengths 1..limit, unit importance weights. Warm-up updates (the compile,
with --compile) are timed apart. Prints one JSON object on stdout: updates_per_s, compile, torch_threads,
warmup_s, and the shapes timed.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import torch

from learner.learner import Learner
from replay.episodes import SampledBatch
from tokenq.build import build_spec
from tokenq.config import load_config

log = logging.getLogger("learner_speed")
FIRST_TOKEN = 4  # ids below are the tokenizer's specials (pad, bos, eos, sep)


def synthetic_batches(n: int, batch_size: int, prompt_len: int, steps: int, vocab: int, seed: int = 0):
    """`n` SampledBatches of the task's shape: prompts (B, P), actions (B, steps), lengths 1..steps."""
    rng = np.random.default_rng(seed)
    return [
        SampledBatch(
            prompts=rng.integers(FIRST_TOKEN, vocab, (batch_size, prompt_len)),
            actions=rng.integers(FIRST_TOKEN, vocab, (batch_size, steps)),
            rewards=rng.random((batch_size, steps)).astype(np.float32),
            lengths=rng.integers(1, steps + 1, batch_size),
            weights=np.ones(batch_size, np.float32),
            slots=np.arange(batch_size),
            generations=np.arange(batch_size) + 1,
        )
        for _ in range(n)
    ]


def timed(learner: Learner, batches: list[SampledBatch], n: int) -> float:
    """Seconds for `n` updates, cycling through `batches`, the last metrics read included."""
    t0 = time.perf_counter()
    for i in range(n):
        learner.update(batches[i % len(batches)])
    learner.flush_metrics()
    if learner.device.type == "cuda":
        torch.cuda.synchronize(learner.device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="reverse", help="preset name or YAML path (default reverse)")
    p.add_argument("--compile", action="store_true", help="learner.compile=true")
    p.add_argument("--updates", type=int, default=300, help="updates timed (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="updates before timing, the compile among them")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("overrides", nargs="*", help="config key=value overrides")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [*args.overrides, f"learner.compile={str(args.compile).lower()}"])
    spec = build_spec(cfg)
    learner = Learner(cfg.learner, spec.net_cfg, seed=0)
    shape = (cfg.learner.batch_size, spec.task.prompt_len, spec.task.max_steps)
    batches = synthetic_batches(16, *shape, spec.net_cfg.vocab_size)
    log.info("%s: batch %d, prompt %d, steps %d, on %s", args.config, *shape, learner.device)
    warmup_s = timed(learner, batches, args.warmup)
    log.info("warm-up: %d updates in %.1f s", args.warmup, warmup_s)
    seconds = timed(learner, batches, args.updates)
    result = {
        "updates_per_s": round(args.updates / seconds, 2),
        "compile": args.compile,
        "torch_threads": torch.get_num_threads(),
        "warmup_s": round(warmup_s, 2),
        "config": args.config,
        "device": str(learner.device),
        "batch_size": shape[0],
        "prompt_len": shape[1],
        "steps": shape[2],
        "updates": args.updates,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
