"""`tokenq bench` figures for a Hugging Face Q-network of the `hf-small` shape (a Llama built from its config, random
weights: throughput does not depend on what the weights know).

- hf.rollout.tokens_per_s_kv / _naive: greedy generation of 64 tokens for 32 prompts with the model's KV cache,
  against recomputing the whole prefix for every token.
- hf.learner.transitions_per_s: Double-DQN updates on 32 full episodes of 64 tokens (one forward over prompt +
  generation for the online and the target network each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from learner.config import LearnerConfig, QNetConfig
from learner.hf import HFQNetwork
from learner.learner import Learner
from tokenq.bench.common import full_batch, rollout_kv, rollout_naive, timed

PROMPT_TOKENS = 12  # a keywords prompt of hf-small ("Write a sentence with the words X, Y.") is 10-14 tokens


def llama(vocab: int, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, positions: int):
    """A tied-embedding Llama with random weights (seed 0), built from its config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=positions,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def hf_small_lm():
    """A Llama of the hf-small preset's shape."""
    from tokenq.config import load_config

    cfg = load_config("hf-small")
    m, t = cfg.model, cfg.task
    d = m.d_model
    return llama(t.vocab_size, d, m.mlp_ratio * d, m.n_layers, m.n_heads, m.n_heads, t.text_prompt_len + 64).eval()


def bench_hf(reps: int, batch: int = 32, steps: int = 64) -> dict:
    lm = hf_small_lm()
    net = HFQNetwork(QNetConfig(q_head="dueling_max"), lm=lm).eval()
    vocab = net.vocab_size
    prompts = torch.randint(3, vocab, (batch, PROMPT_TOKENS))
    assert torch.equal(rollout_kv(net, prompts, 8), rollout_naive(net, prompts, 8))
    kv = timed(lambda: rollout_kv(net, prompts, steps), reps)
    naive = timed(lambda: rollout_naive(net, prompts, steps), max(1, reps // 3))
    learner = Learner(LearnerConfig(device="cpu"), net.cfg, net=net.train())
    sample = full_batch(batch, PROMPT_TOKENS, steps, vocab, np.random.default_rng(0))
    update = timed(lambda: learner.update(sample), max(1, reps // 2))
    return {
        "hf.parameters": net.num_parameters(),
        "hf.rollout.tokens_per_s_kv": batch * steps / kv,
        "hf.rollout.tokens_per_s_naive": batch * steps / naive,
        "hf.rollout.kv_speedup": naive / kv,
        "hf.learner.update_ms": 1000 * update,
        "hf.learner.transitions_per_s": batch * steps / update,
    }


# --- the GPU script's Hugging Face shapes (tokenq/bench/gpu.py) ---------------------------------------------------


@dataclass(frozen=True)
class HFShape:
    """A Llama built from its config (random weights), trained in full or with LoRA on synthetic full batches."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    prompt_len: int
    steps: int  # tokens generated per episode
    batch: int  # episodes per update
    lora_rank: int = 0  # 0: full fine-tuning
    train_layers: int = -1  # hf.train_layers: >= 0 trains the top blocks (and heads) on a frozen trunk
    prefix: int = 0  # prompt tokens every prompt starts with, computed once into a KV cache


def _llama(hidden, intermediate, layers, heads, kv_heads, vocab) -> dict:
    return dict(hidden=hidden, intermediate=intermediate, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab)


SMOLLM2_135M = _llama(576, 1536, 30, 9, 3, 49_152)  # SmolLM2-135M's config.json (134.5M parameters)
LLAMA_1B = _llama(2048, 8192, 16, 32, 8, 128_256)  # Llama-3.2-1B's config.json (1.24B parameters)
TINY_LLAMA = _llama(32, 64, 2, 4, 2, 128)
LORA_RANK = 16
HF_SHAPES = [
    HFShape("smollm2_full", **SMOLLM2_135M, prompt_len=48, steps=32, batch=128),
    HFShape("smollm2_lora", **SMOLLM2_135M, prompt_len=48, steps=32, batch=128, lora_rank=LORA_RANK),
    HFShape("llama1b_full", **LLAMA_1B, prompt_len=48, steps=32, batch=64),
    HFShape("llama1b_lora", **LLAMA_1B, prompt_len=48, steps=32, batch=64, lora_rank=LORA_RANK),
]
TRUNK_LAYERS = 2  # the top blocks the shared-trunk shapes train
HF_SHAPES += [
    HFShape("smollm2_trunk", **SMOLLM2_135M, prompt_len=48, steps=32, batch=128, train_layers=TRUNK_LAYERS, prefix=32),
    HFShape("llama1b_trunk", **LLAMA_1B, prompt_len=48, steps=32, batch=64, train_layers=TRUNK_LAYERS, prefix=32),
]
TINY_HF_SHAPES = [
    HFShape("hf_full", **TINY_LLAMA, prompt_len=4, steps=6, batch=4),
    HFShape("hf_lora", **TINY_LLAMA, prompt_len=4, steps=6, batch=4, lora_rank=4),
    HFShape("hf_trunk", **TINY_LLAMA, prompt_len=4, steps=6, batch=4, train_layers=1, prefix=2),
]


def prefix_ids(shape: HFShape) -> list[int]:
    """The shape's shared prompt prefix: ids the synthetic batches (`shape_batch`) start every prompt with."""
    return [4 + j % (shape.vocab - 4) for j in range(shape.prefix)]


def shape_batch(shape: HFShape, rng: np.random.Generator):
    """A full batch of the shape (tokenq/bench/common.py's `full_batch`), every prompt starting with its prefix."""
    batch = full_batch(shape.batch, shape.prompt_len, shape.steps, shape.vocab, rng)
    batch.prompts[:, : shape.prefix] = prefix_ids(shape)
    return batch


def hf_network(shape: HFShape) -> HFQNetwork:
    """The shape's Q-network: a tied Llama with the dueling_max head (LoRA on every linear layer of the body)."""
    s = shape
    lm = llama(s.vocab, s.hidden, s.intermediate, s.layers, s.heads, s.kv_heads, s.prompt_len + s.steps)
    cfg = QNetConfig(
        q_head="dueling_max",
        hf_path=s.name,
        lora_rank=s.lora_rank,
        lora_alpha=2.0 * s.lora_rank,
        train_layers=s.train_layers,
        prefix_ids=prefix_ids(s),
    )
    return HFQNetwork(cfg, lm=lm)


def hf_update_flops(shape: HFShape) -> int:
    """Matmul FLOPs of one update on `batch` episodes: the sequence is the prompt and steps-1 actions (S tokens), Q is
    read at the `steps` generated positions. Per layer and token the projections hold
    W = 2 d^2 + 2 d d_kv + 3 d I multiply-adds; attention counts the full S x S square (QK^T and AV); the LM head and
    V head are read at the scored positions. Full fine-tuning: online forward + backward (input and weight gradients)
    + target forward = 4 F. LoRA: the base's weights get no gradient, so the online backward is the input gradients
    alone (the linear layers once more, attention twice more); the adapters add 2 r (in + out) per adapted layer and
    token to each of the online forward, its two backward products and the target forward (tests check the sum
    against torch's FlopCounterMode, which also counts attention's recomputed scores)."""
    d, i, L, V = shape.hidden, shape.intermediate, shape.layers, shape.vocab
    d_kv = d * shape.kv_heads // shape.heads
    S, T = shape.prompt_len + shape.steps - 1, shape.steps
    if shape.train_layers >= 0:
        return trunk_update_flops(shape)
    linear = 2 * L * (2 * d * d + 2 * d * d_kv + 3 * d * i) * S
    attention = L * 4 * S * S * d
    head = 2 * (d * V + d) * T
    forward = shape.batch * (linear + attention + head)
    if shape.lora_rank == 0:
        return 4 * forward
    r = shape.lora_rank
    adapted = 2 * r * (4 * d + 2 * (d + d_kv) + 3 * (d + i))  # q, o: d -> d; k, v: d -> d_kv; gate, up, down
    adapters = shape.batch * L * S * adapted
    # The embeddings are frozen, so no gradient is taken for the first layer's q, k, v inputs (base or adapter A);
    # the V head's input and weight gradients are taken.
    first_qkv = S * (2 * (d * d + 2 * d * d_kv) + 3 * 2 * r * d)
    input_grads = shape.batch * (linear + 2 * attention + 2 * d * V * T + 4 * d * T - first_qkv)
    return 2 * forward + input_grads + 4 * adapters


def _blocks(shape: HFShape, n: int, queries: int, keys: int) -> int:
    """Matmul FLOPs of n blocks' forward for `queries` new tokens of one sequence attending to `keys` positions."""
    d, i = shape.hidden, shape.intermediate
    d_kv = d * shape.kv_heads // shape.heads
    return n * (2 * (2 * d * d + 2 * d * d_kv + 3 * d * i) * queries + 4 * queries * keys * d)


def trunk_update_flops(shape: HFShape) -> int:
    """Matmul FLOPs of one update with hf.train_layers=N (learner/trunk.py) on `batch` episodes of S tokens, of which
    the first p are the shared prefix: C = S - p tokens are computed, each attending to all S.
    - The trunk (L - N blocks) runs once, under no_grad, for the online and the target Q; the prefix's keys and
      values through it are computed once for the run, not per update.
    - The online top (N blocks) runs over the C tokens, and over the prefix at batch 1 (its weights change with
      every update). Its backward takes input and weight gradients: over the C tokens 2 x their forward; over the
      prefix, whose output is read only as keys and values, through its bottom N - 1 blocks and the top block's
      key and value projections.
    - The target's top runs the same forward again, without backward.
    - The LM head and V head are read at the T scored positions by both; the online backward takes the LM head's
      input gradient (its weights are the frozen embeddings) and the V head's two products, or with N = 0 (the
      trunk's output needs no gradient) only the V head's weight gradient.
    tests check the sum against torch's FlopCounterMode, which also counts the attention scores the top's backward
    recomputes."""
    d, L, V, N = shape.hidden, shape.layers, shape.vocab, shape.train_layers
    S, T, p = shape.prompt_len + shape.steps - 1, shape.steps, shape.prefix
    C = S - p
    trunk_forward = shape.batch * _blocks(shape, L - N, C, S)
    d_kv = d * shape.kv_heads // shape.heads
    top_forward = shape.batch * _blocks(shape, N, C, S)
    prefix_forward = _blocks(shape, N, p, p)
    prefix_backward = 2 * _blocks(shape, N - 1, p, p) + 8 * d * d_kv * p if N and p else 0
    head = shape.batch * 2 * (d * V + d) * T
    head_backward = shape.batch * (2 * d * T if N == 0 else 2 * d * V * T + 4 * d * T)
    return trunk_forward + 4 * top_forward + 2 * prefix_forward + prefix_backward + 2 * head + head_backward


def recomputed_flops(shape: HFShape) -> int:
    """The attention scores FlopCounterMode counts a second time in the backward, 2 Tq Tk d per trained attention:
    every layer's over the whole sequence (full fine-tuning, LoRA), or the top's (trunk_update_flops)."""
    d, N, p = shape.hidden, shape.train_layers, shape.prefix
    S = shape.prompt_len + shape.steps - 1
    if N < 0:
        return shape.batch * shape.layers * 2 * S * S * d
    return shape.batch * N * 2 * (S - p) * S * d + max(N - 1, 0) * 2 * p * p * d
