"""Tiny Hugging Face models for tests, built from a config with a tokenizer trained in the test: no download."""

from __future__ import annotations

from pathlib import Path

import torch

from actors.corpus.grammar import generate_corpus
from actors.text import content_words, rank_words
from actors.text_task import TOPIC_PROMPT, keywords_prompt


def train_tokenizer(vocab_size: int = 400, chat_template: str | None = None):
    """A byte-level BPE tokenizer trained on grammar sentences and the task prompts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    sentences = generate_corpus(3000, seed=0)
    pool = content_words(rank_words(sentences), 50)
    prompts = [keywords_prompt(pool[i : i + 2]) for i in range(0, 48)] + [TOPIC_PROMPT.format(keywords=w) for w in pool]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(sentences + prompts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


def _tiny_causal_lm(arch: str, vocab: int, positions: int, **config):
    """A 2-layer, width-32 Llama (4 heads, 2 KV heads) or GPT-2 (4 heads) from its config; `config` adds settings."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if arch == "llama":
        return LlamaForCausalLM(
            LlamaConfig(
                vocab_size=vocab,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=positions,
                **config,
            )
        )
    return GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=positions, **config)
    )


def save_tiny_model(path: Path, arch: str = "llama", vocab_size: int = 400, chat_template: str | None = None, seed=0):
    """A randomly initialised tiny causal LM and its tokenizer, saved with save_pretrained to `path`. Weights are
    drawn wider than usual (std 0.2) so that greedy text depends on the prompt, not one token repeated."""
    tok = train_tokenizer(vocab_size, chat_template)
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    tied = {"tie_word_embeddings": True} if arch == "llama" else {}
    model = _tiny_causal_lm(arch, len(tok), 128, initializer_range=0.2, **tied, **ids)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)


def tiny_lm(arch: str, seed: int = 0, vocab: int = 101):
    """A randomly initialised tiny Llama or GPT-2 in eval mode, built from a config alone (no tokenizer)."""
    torch.manual_seed(seed)
    if arch == "llama":
        return _tiny_causal_lm(arch, vocab, 64, initializer_range=0.2).eval()
    return _tiny_causal_lm(arch, vocab, 64, bos_token_id=0, eos_token_id=1).eval()


# Prompts of 5, 2, 3 and 1 tokens in one batch, right-padded with -1.
PROMPTS = torch.tensor([[5, 6, 7, 8, 9], [10, 11, -1, -1, -1], [12, 13, 14, -1, -1], [15, -1, -1, -1, -1]])


def sampled_batch(prompts: torch.Tensor, seed: int = 0):
    """A replay batch of 4 episodes over `prompts` (4 rows): random actions (ids 3..100) and rewards, lengths 6-3."""
    import numpy as np

    from replay.episodes import SampledBatch

    rng = np.random.default_rng(seed)
    B, T = len(prompts), 6
    return SampledBatch(
        prompts=prompts.numpy(),
        actions=rng.integers(3, 101, (B, T)),
        rewards=rng.normal(size=(B, T)).astype(np.float32),
        lengths=np.array([6, 5, 4, 3]),
        weights=np.ones(B, np.float32),
        slots=np.arange(B),
        generations=np.zeros(B, np.int64),
    )


def exported_and_ours(run, exported_dir, n: int) -> tuple[list, list]:
    """Greedy token ids for n keyword prompts from tokenq (the run's newest checkpoint) and from the exported model's
    generate(do_sample=False)."""
    from transformers import AutoModelForCausalLM

    from tokenq.evaluate_run import generate_texts, load_run

    spec, net, _, _ = load_run(run)
    words = spec.task.prompts.pool
    prompts = [keywords_prompt([words[i], words[(i * 7 + 3) % len(words)]]) for i in range(n)]
    ours = [g["token_ids"] for g in generate_texts(spec, net, prompts)]
    exported = AutoModelForCausalLM.from_pretrained(exported_dir)
    theirs = []
    for text in prompts:
        ids = torch.tensor([spec.task.tokenizer.encode_prompt(text)])
        theirs.append(exported.generate(ids, do_sample=False)[0, ids.shape[1] :].tolist())
    return ours, theirs
