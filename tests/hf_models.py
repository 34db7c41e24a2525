"""Tiny Hugging Face models for tests, built from a config with a tokenizer trained in the test: no download."""

from __future__ import annotations

from pathlib import Path

from actors.corpus.grammar import generate_corpus
from actors.hf_text import TOPIC_PROMPT, content_words, keywords_prompt


def train_tokenizer(vocab_size: int = 400, chat_template: str | None = None):
    """A byte-level BPE tokenizer trained on grammar sentences and the task prompts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    sentences = generate_corpus(3000, seed=0)
    pool = content_words(sentences, 50)
    prompts = [keywords_prompt(pool[i : i + 2]) for i in range(0, 48)] + [TOPIC_PROMPT.format(topic=w) for w in pool]
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


def save_tiny_model(path: Path, arch: str = "llama", vocab_size: int = 400, chat_template: str | None = None, seed=0):
    """A randomly initialised tiny causal LM and its tokenizer, saved with save_pretrained to `path`. Weights are
    drawn wider than usual (std 0.2) so that greedy text depends on the prompt, not one token repeated."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = train_tokenizer(vocab_size, chat_template)
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            tie_word_embeddings=True,
            initializer_range=0.2,
            **ids,
        )
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(
            vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=128, initializer_range=0.2, **ids
        )
        model = GPT2LMHeadModel(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)
