"""`tokenq pretrain` with `pretrain.hf_arch: llama`: a small Hugging Face Llama and a byte-level BPE tokenizer, both
trained from scratch on one corpus and saved as a standard model directory (RUN_DIR/hf) for `init.from_hf`.

Each sentence is the continuation of a prompt in the templates that Q-learning uses later (keyword and topic
prompts), and the loss covers the continuation only: the model learns p(sentence | prompt), with a weak copy
habit (keyword_prompt_frac of the prompts name the sentence's own words) for Q-learning to build on.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from actors.hf_text import (
    STOPWORDS,
    TOPIC_PROMPT,
    HFTokenizer,
    content_words,
    keywords_prompt,
    read_text_lines,
    split_sentences,
)
from tokenq.config import Config, ConfigError
from tokenq.run_dir import write_json

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

log = logging.getLogger("tokenq")

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"]
TOPIC_PROMPT_FRAC = 0.25  # share of sentences prompted with a topic (the rest: keywords)
BPE_PROMPTS = 5000  # prompt texts added to the BPE corpus, so the template words become whole tokens
EVAL_BATCH = 256
IGNORE = -100  # label of positions outside the loss (prompt and padding), F.cross_entropy's ignore_index
_WORD = re.compile(r"[A-Za-z]+")


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L) prompt then continuation, right-padded with the pad id
    attention_mask: torch.Tensor  # (B, L) 1 on real tokens
    labels: torch.Tensor  # (B, L) the continuation's ids (EOS included), IGNORE elsewhere


def load_corpus(cfg: Config) -> list[str]:
    """Sentences of task.corpus, or of the built-in grammar when it is unset."""
    if cfg.task.corpus:
        return split_sentences(read_text_lines(Path(cfg.task.corpus)))
    from actors.corpus.grammar import generate_corpus

    return generate_corpus(cfg.task.corpus_sentences, seed=cfg.train.seed)


def train_bpe(texts: list[str], vocab_size: int, max_tokens: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2's scheme: every string encodes, decoding is exact) of `vocab_size` tokens,
    specials included, wrapped as a transformers fast tokenizer that knows the model's `max_tokens` positions."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    # No cleanup of spaces: " ." must decode as " ." for text to round-trip.
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        clean_up_tokenization_spaces=False,
        model_max_length=max_tokens,
    )


class PromptSampler:
    """Prompt text for a sentence: a topic it is about, or keywords it contains (keyword_prompt_frac) or not."""

    def __init__(self, cfg: Config, pool: list[str], rng: np.random.Generator):
        if len(pool) < cfg.task.num_keywords:
            raise ConfigError(
                f"the corpus has {len(pool)} content words, fewer than task.num_keywords={cfg.task.num_keywords}"
            )
        self.cfg, self.pool, self.rng = cfg, pool, rng
        self.pool_set = set(pool)

    def own_words(self, sentence: str) -> list[str]:
        """The sentence's distinct content words, in order. Any content word, not only the keyword pool's: a copy
        habit learned on pool words alone would reach only the quarter of sentences that hold two of them."""
        words = _WORD.findall(sentence.lower())
        return list(dict.fromkeys(w for w in words if len(w) >= 3 and w not in STOPWORDS))

    def text(self, own: list[str]) -> str:
        rng, k = self.rng, self.cfg.task.num_keywords
        if rng.random() < TOPIC_PROMPT_FRAC:
            return TOPIC_PROMPT.format(topic=rng.choice(own or self.pool))
        if len(own) >= k and rng.random() < self.cfg.pretrain.keyword_prompt_frac:
            return keywords_prompt(list(rng.permutation(own)[:k]))
        return keywords_prompt(list(rng.choice(self.pool, size=k, replace=False)))


class Examples:
    """The encoded sentences; each batch draws fresh prompts for them, so a sentence seen twice is seen under
    different prompts."""

    def __init__(
        self, cfg: Config, sampler: PromptSampler, tokenizer: HFTokenizer, sentences: list[str], conts: list[list[int]]
    ):
        self.max_prompt_tokens = cfg.task.max_prompt_tokens
        self.sampler, self.tokenizer, self.conts = sampler, tokenizer, conts
        self.own = [sampler.own_words(s) for s in sentences]
        self._prompt_ids: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.conts)

    def prompt_ids(self, row: int) -> list[int]:
        text = self.sampler.text(self.own[row])
        if text not in self._prompt_ids:
            self._prompt_ids[text] = self.tokenizer.encode_prompt(text)
        return self._prompt_ids[text]

    def batch(self, rows: np.ndarray) -> Batch:
        """Rows whose prompt is longer than task.max_prompt_tokens are left out."""
        pairs = [(self.prompt_ids(r), self.conts[r]) for r in rows]
        pairs = [(p, c) for p, c in pairs if len(p) <= self.max_prompt_tokens]
        if not pairs:
            raise ConfigError(f"task.max_prompt_tokens={self.max_prompt_tokens} is shorter than every prompt drawn")
        return make_batch([p for p, _ in pairs], [c for _, c in pairs], self.tokenizer.pad_id)


def make_batch(prompts: list[list[int]], continuations: list[list[int]], pad_id: int) -> Batch:
    """Right-padded rows; with right padding a token's position is its index, as in training without padding."""
    rows = [p + c for p, c in zip(prompts, continuations)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompts, continuations)):
        n = len(p) + len(c)
        ids[i, :n] = torch.tensor(p + c)
        mask[i, :n] = 1
        labels[i, len(p) : n] = torch.tensor(c)
    return Batch(ids, mask, labels)


def continuation_loss(model: LlamaForCausalLM, batch: Batch) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over the continuation tokens (EOS included), and their number.

    The output layer runs on those positions only: about half of a batch is prompt and padding, and the
    (D, V) output layer is the largest matmul of a small model."""
    hidden = model.get_decoder()(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    targets = batch.labels[:, 1:]  # the hidden state at t predicts the token at t + 1
    scored = targets != IGNORE  # (B, L - 1)
    logits = model.get_output_embeddings()(hidden[:, :-1][scored])  # (N, V)
    return F.cross_entropy(logits.float(), targets[scored], reduction="sum"), int(scored.sum())


def build_model(cfg: Config, hf_tok: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    from transformers import LlamaConfig, LlamaForCausalLM

    m = cfg.model
    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=m.d_model,
        intermediate_size=m.mlp_ratio * m.d_model,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        num_key_value_heads=m.n_heads,
        max_position_embeddings=cfg.task.max_prompt_tokens + cfg.task.max_length,
        tie_word_embeddings=True,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
    )
    torch.manual_seed(cfg.train.seed)
    return LlamaForCausalLM(config)


def encode_continuations(
    cfg: Config, hf_tok: PreTrainedTokenizerFast, sentences: list[str]
) -> tuple[list[str], list[list[int]]]:
    """Each sentence's ids after a space (as it follows a prompt) with EOS; sentences past task.max_length tokens
    (EOS included) are left out."""
    eos = hf_tok.eos_token_id
    encoded = hf_tok([" " + s for s in sentences], add_special_tokens=False)["input_ids"]
    kept = [(s, ids + [eos]) for s, ids in zip(sentences, encoded) if len(ids) < cfg.task.max_length]
    if len(kept) <= cfg.pretrain.heldout_sentences:
        raise ConfigError(
            f"the corpus has {len(kept)} sentences of fewer than task.max_length={cfg.task.max_length} tokens; "
            f"pretraining needs more than pretrain.heldout_sentences={cfg.pretrain.heldout_sentences}"
        )
    return [s for s, _ in kept], [c for _, c in kept]


def heldout_loss(model: LlamaForCausalLM, batches: list[Batch]) -> float:
    """Mean per-token loss over the held-out continuations."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in batches:
            ce, n = continuation_loss(model, batch)
            total, count = total + float(ce), count + n
    model.train()
    return total / count


def prepare(cfg: Config, rng: np.random.Generator) -> tuple[PreTrainedTokenizerFast, Examples]:
    """The tokenizer, trained on the sentences and a sample of prompts (so the template words become whole
    tokens), and the examples: sentences that fit in task.max_length tokens."""
    sentences = load_corpus(cfg)
    sampler = PromptSampler(cfg, content_words(sentences, cfg.task.keyword_pool), rng)
    picks = rng.integers(0, len(sentences), BPE_PROMPTS)
    bpe_prompts = [sampler.text(sampler.own_words(sentences[i])) for i in picks]
    hf_tok = train_bpe(sentences + bpe_prompts, cfg.task.vocab_size, cfg.task.max_prompt_tokens + cfg.task.max_length)
    sentences, conts = encode_continuations(cfg, hf_tok, sentences)
    return hf_tok, Examples(cfg, sampler, HFTokenizer(hf_tok, len(hf_tok)), sentences, conts)


def train(
    cfg: Config, model: LlamaForCausalLM, examples: Examples, rows: np.ndarray, rng: np.random.Generator, t0: float
) -> int:
    """AdamW on the continuation loss of batches drawn from `rows`; returns the tokens trained on."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain.lr, weight_decay=cfg.learner.weight_decay)
    tokens_seen = 0
    for step in range(1, cfg.pretrain.steps + 1):
        ce, n = continuation_loss(model, examples.batch(rows[rng.integers(0, len(rows), cfg.pretrain.batch_size)]))
        loss = ce / n
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.learner.grad_clip)
        optimizer.step()
        tokens_seen += n
        if step % 250 == 0 or step == cfg.pretrain.steps:
            elapsed = time.perf_counter() - t0
            log.info("pretrain step %5d  loss %.3f  tokens %d  %.0fs", step, loss.item(), tokens_seen, elapsed)
    return tokens_seen


def pretrain_hf(cfg: Config, run_dir: Path) -> dict:
    """Train the tokenizer and the model, save both to RUN_DIR/hf; returns the summary (pretrain_summary.json)."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ConfigError('pretrain.hf_arch needs the Hugging Face extra: pip install -e ".[hf]"') from None
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.train.seed)
    hf_tok, examples = prepare(cfg, rng)
    # Held-out sentences are never trained on; their prompts are drawn once.
    order = rng.permutation(len(examples))
    held, rows = order[: cfg.pretrain.heldout_sentences], order[cfg.pretrain.heldout_sentences :]
    held_batches = [examples.batch(held[i : i + EVAL_BATCH]) for i in range(0, len(held), EVAL_BATCH)]
    model = build_model(cfg, hf_tok)
    log.info(
        "pretrain (llama): %d sentences (%d held out), BPE vocabulary %d, keyword pool %d, %d parameters",
        len(examples),
        len(held),
        len(hf_tok),
        len(examples.sampler.pool),
        model.num_parameters(),
    )
    tokens_seen = train(cfg, model, examples, rows, rng, t0)
    held_loss = heldout_loss(model, held_batches)

    run_dir = Path(run_dir)
    hf_dir = run_dir / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Writing model shards" bar would follow the last progress line
    model.save_pretrained(hf_dir)
    hf_tok.save_pretrained(hf_dir)
    write_json(run_dir / "config.json", cfg.to_dict())
    summary = {
        "mode": "pretrain",
        "arch": "llama",
        "sentences": len(examples),
        "vocab_size": len(hf_tok),
        "steps": cfg.pretrain.steps,
        "tokens_trained": tokens_seen,
        "heldout_loss": round(held_loss, 4),
        "heldout_perplexity": round(float(np.exp(held_loss)), 3),
        "wall_time_s": round(time.perf_counter() - t0, 2),
        "num_parameters": model.num_parameters(),
        "hf_dir": str(hf_dir),
    }
    write_json(run_dir / "pretrain_summary.json", summary)
    return summary
