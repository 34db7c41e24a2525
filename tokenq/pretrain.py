"""`tokenq pretrain`: fit the Q-network as a language model on a corpus (cross-entropy on next words), so that
Q-learning on text starts from a fluent greedy policy (the warm start of Sequence Tutor, Jaques et al. 2017).

The prompt slots hold keyword prompts drawn independently of each sentence: the model learns p(sentence) and to
ignore the prompt, which is what Q-learning then has to change.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from actors.text import WordTokenizer
from actors.tokenizer import EOS, PAD
from learner.checkpoint import Checkpoint
from learner.learner import Learner
from tokenq.build import resolve_net_config
from tokenq.config import Config, ConfigError
from tokenq.run_dir import write_json
from tokenq.text_setup import load_sentences, make_text_task

log = logging.getLogger("tokenq")


def encode_sentences(
    tokenizer: WordTokenizer, sentences: list[list[str]], max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, max_length) ids with EOS after each sentence, and lengths; sentences that do not fit are left out."""
    fitting = [s for s in sentences if len(s) < max_length]
    ids = np.full((len(fitting), max_length), PAD, dtype=np.int64)
    lengths = np.zeros(len(fitting), dtype=np.int64)
    for i, s in enumerate(fitting):
        row = [tokenizer.id_of(w) or tokenizer.unk_id for w in s] + [EOS]
        ids[i, : len(row)] = row
        lengths[i] = len(row)
    return ids, lengths


def lm_loss(net, prompts: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every real token (EOS included)."""
    T = int(lengths.max())
    logits = net(prompts, tokens[:, : T - 1])  # (B, T, V): predicts tokens[:, :T]
    mask = torch.arange(T)[None, :] < lengths[:, None]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, :T].reshape(-1), reduction="none")
    return (ce.view_as(mask) * mask).sum() / mask.sum()


def pretrain(cfg: Config, run_dir: Path) -> dict:
    if cfg.pretrain.hf_arch:
        from tokenq.hf_pretrain import pretrain_hf

        return pretrain_hf(cfg, run_dir)
    t0 = time.perf_counter()
    sentences = load_sentences(cfg)
    tokenizer = WordTokenizer.from_sentences(sentences, cfg.task.vocab_size)
    task = make_text_task(cfg, tokenizer, prior=None)
    # The vocabulary is the tokenizer's; position tables keep a preset's size (the article's 100) when larger.
    m = cfg.model
    cfg.model = dataclasses.replace(
        m,
        vocab_size=tokenizer.vocab_size,
        max_prompt_len=max(m.max_prompt_len, task.prompt_len),
        max_gen_len=max(m.max_gen_len, task.max_steps),
    )
    net_cfg = resolve_net_config(cfg, task)
    ids, lengths = encode_sentences(tokenizer, sentences, task.max_steps)
    if len(ids) <= cfg.pretrain.heldout_sentences:
        raise ConfigError(
            f"the corpus has {len(ids)} sentences of fewer than task.max_length={task.max_steps} "
            f"words; pretraining needs more than pretrain.heldout_sentences={cfg.pretrain.heldout_sentences}"
        )
    rng = np.random.default_rng(cfg.train.seed)
    order = rng.permutation(len(ids))
    held, train = order[: cfg.pretrain.heldout_sentences], order[cfg.pretrain.heldout_sentences :]
    learner = Learner(dataclasses.replace(cfg.learner, lr=cfg.pretrain.lr), net_cfg, seed=cfg.train.seed)
    net = learner.online
    # The language-model loss is blind to V(s) (softmax ignores a per-state constant); left in the optimizer,
    # Adam would normalise its round-off gradients into full-size steps and V would drift far from 0.
    trained = [p for n, p in net.named_parameters() if not n.startswith("value_head.")]
    learner.optimizer = torch.optim.AdamW(trained, lr=cfg.pretrain.lr, weight_decay=cfg.learner.weight_decay)
    log.info(
        "pretrain: %d sentences (%d held out), vocabulary %d words, %d parameters",
        len(ids),
        len(held),
        tokenizer.vocab_size,
        net.num_parameters(),
    )

    pool = set(task.keyword_pool.tolist())
    in_sentence = [np.array(sorted(set(row[:n].tolist()) & pool), dtype=np.int64) for row, n in zip(ids, lengths)]

    def prompts_for(rows: np.ndarray) -> np.ndarray:
        """Random keywords, or with probability keyword_prompt_frac keywords the sentence itself contains."""
        prompts = task.sample_prompts(rng, len(rows))
        for i, row in enumerate(rows):
            own = in_sentence[row]
            if len(own) >= task.prompt_len and rng.random() < cfg.pretrain.keyword_prompt_frac:
                prompts[i] = rng.permutation(own)[: task.prompt_len]
        return prompts

    def batch(rows: np.ndarray):
        return (torch.as_tensor(prompts_for(rows)), torch.as_tensor(ids[rows]), torch.as_tensor(lengths[rows]))

    tokens_seen = 0
    for step in range(1, cfg.pretrain.steps + 1):
        rows = train[rng.integers(0, len(train), size=cfg.pretrain.batch_size)]
        loss = lm_loss(net, *batch(rows))
        learner.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.learner.grad_clip)
        learner.optimizer.step()
        tokens_seen += int(lengths[rows].sum())
        if step % 250 == 0 or step == cfg.pretrain.steps:
            log.info(
                "pretrain step %5d  loss %.3f  tokens %d  %.0fs",
                step,
                loss.item(),
                tokens_seen,
                time.perf_counter() - t0,
            )
    with torch.no_grad():
        held_loss = float(lm_loss(net.eval(), *batch(held)))
    learner.updates, learner.transitions_trained = cfg.pretrain.steps, tokens_seen
    learner.target.load_state_dict(net.state_dict())

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(run_dir / "tokenizer.json")
    write_json(run_dir / "config.json", cfg.to_dict())
    ckpt = Checkpoint(learner=learner.state_dict(), config=cfg.to_dict(), counters={"tokens": tokens_seen})
    ckpt.save(run_dir / "checkpoints", cfg.train.keep_checkpoints)
    summary = {
        "mode": "pretrain",
        "sentences": len(ids),
        "vocab_size": tokenizer.vocab_size,
        "steps": cfg.pretrain.steps,
        "tokens_trained": tokens_seen,
        "heldout_loss": round(held_loss, 4),
        "heldout_perplexity": round(float(np.exp(held_loss)), 3),
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "num_parameters": net.num_parameters(),
    }
    write_json(run_dir / "pretrain_summary.json", summary)
    return summary
