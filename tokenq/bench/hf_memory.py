"""Peak memory and time of a learner process on a Hugging Face model, full fine-tuning against LoRA.

    python -m tokenq.bench.hf_memory MODEL_DIR [--lora-rank 8] [--batch 8] [--prompt 40] [--steps 24] [--updates 3]

Each setting runs in a fresh process (so that its peak resident memory is its own): it builds the learner as a run
does (online network, target, AdamW), runs `--updates` Double-DQN updates on a synthetic full batch, and prints one
JSON line per setting: peak RSS in MB, seconds per update, trainable parameters and bytes per publish.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(args) -> dict:
    import numpy as np
    import torch

    from distributed.codec import weights_arrays, weights_nbytes
    from learner.config import LearnerConfig, QNetConfig
    from learner.learner import Learner
    from tokenq.bench.common import full_batch

    torch.set_num_threads(args.threads)
    cfg = QNetConfig(q_head="dueling_max", hf_path=args.model, lora_rank=args.lora_rank, token_bias=args.token_bias)
    learner = Learner(LearnerConfig(device="cpu", n_step=3), cfg)
    vocab = learner.online.vocab_size
    batch = full_batch(args.batch, args.prompt, args.steps, vocab, np.random.default_rng(0))
    learner.update(batch)  # the optimizer's state exists after the first step
    t0 = time.perf_counter()
    for _ in range(args.updates):
        learner.update(batch)
    seconds = (time.perf_counter() - t0) / args.updates
    return {
        "lora_rank": args.lora_rank,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "s_per_update": round(seconds, 2),
        "parameters": learner.online.num_parameters(),
        "trainable_parameters": learner.trainable_parameters(),
        "weights_bytes_per_publish": weights_nbytes(weights_arrays(learner.get_weights())),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a Hugging Face model directory")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--token-bias", action="store_true")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt", type=int, default=40)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--updates", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # run one setting in this process
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return 0
    for rank in (0, args.lora_rank):
        cmd = [sys.executable, "-m", "tokenq.bench.hf_memory", args.model, "--one", "--lora-rank", str(rank)]
        cmd += ["--batch", str(args.batch), "--prompt", str(args.prompt), "--steps", str(args.steps)]
        cmd += ["--updates", str(args.updates), "--threads", str(args.threads)]
        cmd += ["--token-bias"] if args.token_bias else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print(out.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
