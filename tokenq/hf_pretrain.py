"""`tokenq pretrain` with `pretrain.hf_arch: llama` (the loop is tokenq/pretrain.py's): a small Hugging Face Llama
and a byte-level BPE tokenizer, both trained from scratch on one corpus and saved as a standard model directory
(RUN_DIR/hf) for `init.from_hf`. Prompts are the text tasks' instructions (keywords or a topic), so the model
learns p(sentence | prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from actors.hf_text import HFTokenizer
from actors.text import content_words, own_words, rank_words
from actors.text_task import SentencePrompts
from tokenq.config import Config, ConfigError

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"]
BPE_PROMPTS = 5000  # prompt texts added to the BPE corpus, so the template words become whole tokens
IGNORE = -100  # label of positions outside the loss (prompt and padding), F.cross_entropy's ignore_index


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L) prompt then continuation, right-padded with the pad id
    attention_mask: torch.Tensor  # (B, L) 1 on real tokens
    labels: torch.Tensor  # (B, L) the continuation's ids (EOS included), IGNORE elsewhere


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
        max_position_embeddings=cfg.task.text_prompt_len + cfg.task.max_length,
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
    return [s for s, _ in kept], [c for _, c in kept]


class HFLM:
    """A Llama and its BPE tokenizer, trained on the sentences and a sample of prompts (so the template words become
    whole tokens); the examples are sentences that fit in task.max_length tokens, prompted afresh per batch."""

    def __init__(self, cfg: Config, sentences: list[str], rng: np.random.Generator):
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise ConfigError('pretrain.hf_arch needs the Hugging Face extra: pip install -e ".[hf]"') from None
        t = cfg.task
        self.cfg, self.max_prompt_tokens = cfg, t.text_prompt_len
        self.sampler = SentencePrompts.of(cfg, content_words(rank_words(sentences), t.keyword_pool), rng, bare=False)
        picks = rng.integers(0, len(sentences), BPE_PROMPTS)
        bpe_prompts = [self.sampler.text(own_words(sentences[i])) for i in picks]
        self.hf_tok = train_bpe(sentences + bpe_prompts, t.vocab_size, t.text_prompt_len + t.max_length)
        self.tokenizer = HFTokenizer(self.hf_tok, len(self.hf_tok))
        sentences, self.conts = encode_continuations(cfg, self.hf_tok, sentences)
        self.own = [own_words(s) for s in sentences]
        self._prompt_ids: dict[str, list[int]] = {}
        self.model = build_model(cfg, self.hf_tok)

    @property
    def num_examples(self) -> int:
        return len(self.conts)

    @property
    def vocab_size(self) -> int:
        return len(self.hf_tok)

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    def trained_parameters(self):
        return self.model.parameters()

    def prompt_ids(self, row: int) -> list[int]:
        text = self.sampler.text(self.own[row])
        if text not in self._prompt_ids:
            self._prompt_ids[text] = self.tokenizer.encode_prompt(text)
        return self._prompt_ids[text]

    def batch(self, rows: np.ndarray) -> Batch:
        """Rows whose prompt is longer than task.prompt_len tokens are left out."""
        pairs = [(self.prompt_ids(r), self.conts[r]) for r in rows]
        pairs = [(p, c) for p, c in pairs if len(p) <= self.max_prompt_tokens]
        if not pairs:
            raise ConfigError(f"task.prompt_len={self.max_prompt_tokens} is shorter than every prompt drawn")
        return make_batch([p for p, _ in pairs], [c for _, c in pairs], self.tokenizer.pad_id)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, int]:
        return continuation_loss(self.model, batch)

    def eval(self) -> None:
        self.model.eval()

    def save(self, run_dir: Path, tokens_seen: int) -> dict:
        """The model and tokenizer as a standard directory, RUN_DIR/hf."""
        from transformers.utils import logging as hf_logging

        hf_dir = run_dir / "hf"
        hf_dir.mkdir(parents=True, exist_ok=True)
        hf_logging.disable_progress_bar()  # a "Writing model shards" bar would follow the last progress line
        self.model.save_pretrained(hf_dir)
        self.hf_tok.save_pretrained(hf_dir)
        return {"arch": "llama", "hf_dir": str(hf_dir)}
