"""`tokenq pretrain`: fit a language model on a corpus, so that Q-learning on text starts from a fluent greedy policy
(the warm start of Sequence Tutor, Jaques et al. 2017).

One loop for both kinds of model (`pretrain`): each sentence is the continuation of a prompt in the form the text
task shows later, drawn afresh each time the sentence is drawn (`SentencePrompts`), and the loss covers the
continuation only. `keyword_prompt_frac` of the prompts name the sentence's own words, a weak copy habit for
Q-learning to build on; the rest name random keywords, so the model also learns to write without them.
- `pretrain.hf_arch: ""`: tokenq's own network on a word vocabulary (`WordLM`, here); prompts are bare keywords,
  saved as a run directory (tokenizer.json and a checkpoint) for `init.from_run`.
- `pretrain.hf_arch: llama`: a Hugging Face Llama and a byte-level BPE tokenizer (tokenq/hf_pretrain.py); prompts
  are the tasks' instructions, keywords or a topic, saved as a model directory (RUN_DIR/hf) for `init.from_hf`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from actors.text import WordTokenizer, content_words, own_words, words
from actors.text_task import SentencePrompts
from actors.tokenizer import EOS, PAD
from learner.checkpoint import Checkpoint
from learner.config import QNetConfig
from learner.learner import Learner
from tokenq.config import Config, ConfigError
from tokenq.run_dir import write_json
from tokenq.text_setup import corpus

log = logging.getLogger("tokenq")

EVAL_BATCH = 256


def fit(cfg: Config, params, loss_of, num_rows: int, rng: np.random.Generator, t0: float) -> int:
    """AdamW on `loss_of(rows) -> (summed loss, tokens)` for batches of rows drawn from range(num_rows); returns
    the tokens trained on."""
    params = list(params)
    optimizer = torch.optim.AdamW(params, lr=cfg.pretrain.lr, weight_decay=cfg.learner.weight_decay)
    tokens_seen = 0
    for step in range(1, cfg.pretrain.steps + 1):
        ce, n = loss_of(rng.integers(0, num_rows, cfg.pretrain.batch_size))
        loss = ce / n
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.learner.grad_clip)
        optimizer.step()
        tokens_seen += n
        if step % 250 == 0 or step == cfg.pretrain.steps:
            elapsed = time.perf_counter() - t0
            log.info("pretrain step %5d  loss %.3f  tokens %d  %.0fs", step, loss.item(), tokens_seen, elapsed)
    return tokens_seen


def pretrain(cfg: Config, run_dir: Path) -> dict:
    """Train the tokenizer and the language model, save both; returns the summary (pretrain_summary.json)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.train.seed)
    if cfg.pretrain.hf_arch:
        from tokenq.hf_pretrain import HFLM

        lm = HFLM(cfg, corpus(cfg), rng)
    else:
        lm = WordLM(cfg, corpus(cfg), rng)
    if lm.num_examples <= cfg.pretrain.heldout_sentences:
        raise ConfigError(
            f"the corpus has {lm.num_examples} sentences of fewer than task.max_length={cfg.task.max_length} "
            f"tokens; pretraining needs more than pretrain.heldout_sentences={cfg.pretrain.heldout_sentences}"
        )
    # Held-out sentences are never trained on; their prompts are drawn once.
    order = rng.permutation(lm.num_examples)
    held, rows = order[: cfg.pretrain.heldout_sentences], order[cfg.pretrain.heldout_sentences :]
    held_batches = [lm.batch(held[i : i + EVAL_BATCH]) for i in range(0, len(held), EVAL_BATCH)]
    log.info(
        "pretrain (%s): %d sentences (%d held out), vocabulary %d, keyword pool %d, %d parameters",
        cfg.pretrain.hf_arch or "tokenq",
        lm.num_examples,
        len(held),
        lm.vocab_size,
        len(lm.sampler.pool),
        lm.num_parameters(),
    )
    tokens_seen = fit(cfg, lm.trained_parameters(), lambda r: lm.loss(lm.batch(rows[r])), len(rows), rng, t0)
    lm.eval()
    with torch.no_grad():
        total, count = 0.0, 0
        for batch in held_batches:
            ce, n = lm.loss(batch)
            total, count = total + float(ce), count + n
    held_loss = total / count

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    extra = lm.save(run_dir, tokens_seen)
    write_json(run_dir / "config.json", cfg.to_dict())
    summary = {
        "mode": "pretrain",
        "sentences": lm.num_examples,
        "vocab_size": lm.vocab_size,
        "steps": cfg.pretrain.steps,
        "tokens_trained": tokens_seen,
        "heldout_loss": round(held_loss, 4),
        "heldout_perplexity": round(float(np.exp(held_loss)), 3),
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "num_parameters": lm.num_parameters(),
    } | extra
    write_json(run_dir / "pretrain_summary.json", summary)
    return summary


class WordLM:
    """tokenq's own network on a word vocabulary of the corpus: prompts are bare keywords (task.num_keywords of
    them), sentences fit in task.max_length tokens with their EOS."""

    def __init__(self, cfg: Config, sentences: list[str], rng: np.random.Generator):
        self.cfg = cfg
        self.tokenizer = WordTokenizer.from_sentences(sentences, cfg.task.vocab_size)
        tok, k, T = self.tokenizer, cfg.task.num_keywords, cfg.task.max_length
        self.sampler = SentencePrompts.of(cfg, content_words(tok.vocab, cfg.task.keyword_pool), rng, bare=True)
        fitting = [s for s in (words(s) for s in sentences) if len(s) < T]
        self.ids = np.full((len(fitting), T), PAD, dtype=np.int64)
        self.lengths = np.zeros(len(fitting), dtype=np.int64)
        for i, s in enumerate(fitting):
            row = [tok.id_of(w) or tok.unk_id for w in s] + [EOS]
            self.ids[i, : len(row)] = row
            self.lengths[i] = len(row)
        self.own = [[w for w in own_words(" ".join(s)) if tok.id_of(w) is not None] for s in fitting]
        net_cfg = QNetConfig(
            **dataclasses.asdict(cfg.model),
            vocab_size=tok.vocab_size,
            max_prompt_len=k,
            max_gen_len=T,
            bos_id=tok.bos_id,
            sep_id=tok.sep_id,
        )
        self.learner = Learner(dataclasses.replace(cfg.learner, lr=cfg.pretrain.lr), net_cfg, seed=cfg.train.seed)
        self.net = self.learner.online

    @property
    def num_examples(self) -> int:
        return len(self.ids)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def num_parameters(self) -> int:
        return self.net.num_parameters()

    def trained_parameters(self):
        # The language-model loss is blind to V(s) (softmax ignores a per-state constant); left in the optimizer,
        # Adam would normalise its round-off gradients into full-size steps and V would drift far from 0.
        return [p for n, p in self.net.named_parameters() if not n.startswith("value_head.")]

    def batch(self, rows: np.ndarray):
        prompts = [self.tokenizer.encode(self.sampler.text(self.own[r])) for r in rows]
        return torch.as_tensor(prompts), torch.as_tensor(self.ids[rows]), torch.as_tensor(self.lengths[rows])

    def loss(self, batch) -> tuple[torch.Tensor, int]:
        """Summed next-token cross-entropy over every real token (EOS included), and their number."""
        prompts, tokens, lengths = batch
        T = int(lengths.max())
        logits = self.net(prompts, tokens[:, : T - 1])  # (B, T, V): predicts tokens[:, :T]
        mask = torch.arange(T)[None, :] < lengths[:, None]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, :T].reshape(-1), reduction="none")
        return (ce.view_as(mask) * mask).sum(), int(mask.sum())

    def eval(self) -> None:
        self.net.eval()

    def save(self, run_dir: Path, tokens_seen: int) -> dict:
        """tokenizer.json and a checkpoint, as `init.from_run` reads them."""
        learner = self.learner
        learner.updates, learner.transitions_trained = self.cfg.pretrain.steps, tokens_seen
        learner.target.load_state_dict(self.net.state_dict())
        self.tokenizer.save(run_dir / "tokenizer.json")
        ckpt = Checkpoint(learner=learner.state_dict(), config=self.cfg.to_dict(), counters={"tokens": tokens_seen})
        ckpt.save(run_dir / "checkpoints", self.cfg.train.keep_checkpoints)
        return {}
