"""Evaluation on held-out prompts (the policy's greedy decoding and, where it samples, its sampled one), and the
distance to exact Q* on enumerable tasks."""

from __future__ import annotations

import numpy as np
import torch

from actors.policy import GREEDY, Policy
from actors.rollout import generate
from actors.tasks import Task
from learner.qfunction import QFunction
from learner.tabular import State

SAMPLED = "sampled_"  # the prefix of the sampled policy's metrics


def greedy_eval(net: QFunction, task: Task, prompts: np.ndarray, num_samples: int = 4, policy: Policy = GREEDY) -> dict:
    """Greedy decoding of every prompt (the policy's most likely token): success rate, mean return, the optimum
    where known, a few samples, the text metrics. Where `policy` samples, its sampled decoding's success rate, return
    and text metrics too, each under SAMPLED + its name."""
    was_training = net.training
    net.eval()
    batch = generate(net, task, prompts, 0.0, np.random.default_rng(0), policy.greedy())
    sampled = generate(net, task, prompts, 0.0, np.random.default_rng(1), policy) if policy.sample else None
    net.train(was_training)
    success = task.success(prompts, batch.actions, batch.lengths)
    optimal = task.optimal_return(prompts)
    tok = task.tokenizer
    samples = [
        {
            "prompt": tok.decode(prompts[i]),
            "generation": tok.decode(batch.actions[i, : batch.lengths[i]], skip_special=False),
            "return": float(batch.returns[i]),
            "tokens": [tok.decode([a], skip_special=False) for a in batch.actions[i, : batch.lengths[i]]],
            "values": [round(float(v), 3) for v in batch.values[i, : batch.lengths[i]]],
            "q_taken": [round(float(v), 3) for v in batch.q_taken[i, : batch.lengths[i]]],
            "rewards": [round(float(v), 3) for v in batch.rewards[i, : batch.lengths[i]]],
        }
        for i in range(min(num_samples, len(prompts)))
    ]
    extra = task.text_metrics(prompts, batch.actions, batch.lengths)
    if sampled is not None:
        drawn = task.success(prompts, sampled.actions, sampled.lengths)
        extra[SAMPLED + "success_rate"] = None if drawn is None else float(drawn.mean())
        extra[SAMPLED + "mean_return"] = float(sampled.returns.mean())
        metrics = task.text_metrics(prompts, sampled.actions, sampled.lengths)
        extra |= {SAMPLED + k: v for k, v in metrics.items()}
        extra[SAMPLED + "samples"] = [
            tok.decode(sampled.actions[i, : sampled.lengths[i]], skip_special=False)
            for i in range(min(num_samples, len(prompts)))
        ]
    return {
        **extra,
        "num_prompts": int(len(prompts)),
        "success_rate": None if success is None else float(success.mean()),
        "mean_return": float(batch.returns.mean()),
        "optimal_mean_return": None if optimal is None else float(optimal.mean()),
        "mean_length": float(batch.lengths.mean()),
        "samples": samples,
    }


@torch.no_grad()
def q_star_errors(net: QFunction, table: dict[State, np.ndarray]) -> tuple[float, float]:
    """(max, mean) of |Q(s, a) - Q*(s, a)| over every state and action, states batched by prefix length."""
    by_len: dict[int, list[tuple[bytes, tuple[int, ...]]]] = {}
    for key in table:
        by_len.setdefault(len(key[1]), []).append(key)
    device = next(net.parameters()).device
    errors = []
    for t, keys in by_len.items():
        prompts = torch.as_tensor(np.stack([np.frombuffer(k[0], dtype=np.int64) for k in keys]), device=device)
        prefixes = torch.as_tensor(np.array([k[1] for k in keys], dtype=np.int64).reshape(len(keys), t), device=device)
        q = net(prompts, prefixes)[:, t].float().cpu().numpy()  # (N, V) Q(s_t, .)
        errors.append(np.abs(q - np.stack([table[k] for k in keys])).ravel())
    err = np.concatenate(errors)
    return float(err.max()), float(err.mean())


def full_eval(spec, net: QFunction, num_samples: int = 4) -> dict:
    """Greedy evaluation on the held-out prompts, plus the distance to Q* where the task has it."""
    result = greedy_eval(net, spec.task, spec.heldout, num_samples=num_samples, policy=spec.policy)
    if spec.q_star is not None:
        result["q_star_max_abs_error"], result["q_star_mean_abs_error"] = q_star_errors(net, spec.q_star)
    else:
        result["q_star_max_abs_error"] = result["q_star_mean_abs_error"] = None
    return result
