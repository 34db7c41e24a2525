"""`tokenq bench` figures for a Hugging Face Q-network of the `hf-small` shape (a Llama built from its config, random
weights: throughput does not depend on what the weights know).

- hf.rollout.tokens_per_s_kv / _naive: greedy generation of 64 tokens for 32 prompts with the model's KV cache,
  against recomputing the whole prefix for every token.
- hf.learner.transitions_per_s: Double-DQN updates on 32 full episodes of 64 tokens (one forward over prompt +
  generation for the online and the target network each).
"""

from __future__ import annotations

import numpy as np
import torch

from learner.config import LearnerConfig, QNetConfig
from learner.hf import HFQNetwork
from learner.learner import Learner

PROMPT_TOKENS = 12  # a keywords prompt of hf-small ("Write a sentence with the words X, Y.") is 10-14 tokens


def hf_small_lm():
    """A Llama of the hf-small preset's shape, from its config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tokenq.config import load_config

    cfg = load_config("hf-small")
    m, t = cfg.model, cfg.task
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=t.vocab_size,
        hidden_size=m.d_model,
        intermediate_size=m.mlp_ratio * m.d_model,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        num_key_value_heads=m.n_heads,
        max_position_embeddings=t.max_prompt_tokens + 64,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def bench_hf(reps: int, timed, rollout_kv, rollout_naive, full_batch, batch: int = 32, steps: int = 64) -> dict:
    """`timed(fn, reps)` -> median seconds; `rollout_kv`, `rollout_naive` and `full_batch` as in tokenq/bench.py."""
    lm = hf_small_lm()
    net = HFQNetwork(QNetConfig(q_head="dueling"), lm=lm).eval()
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
