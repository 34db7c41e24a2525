"""A Hugging Face tokenizer as tokenq's text tasks read it (actors/text_task.py reads every tokenizer the same way).

Prompts are instructions (through the tokenizer's chat template when it has one) of any length; a (B, P) prompt
array is right-padded with PROMPT_PAD (-1), a value no token has, so each prompt's length is kept wherever the array
goes (episode batches, replay shards, the learner).

Pure: imports neither ray nor torch; `transformers` only inside `HFTokenizer.load`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from actors.text import TextError
from replay.episodes import PROMPT_PAD


class HFTokenizer:
    """A Hugging Face tokenizer as tokenq's tasks use it: ids in, text out, EOS known, prompts through the chat
    template when asked. `vocab_size` is the model's (Q covers every row of its output layer). Its prompts are
    instructions of any length, right-padded; a subword token may be part of a longer word, so a word is known
    complete only at the token after it."""

    bare_prompts = False
    whole_word_tokens = False

    def __init__(self, tok, vocab_size: int, chat_template: str = "auto", system_prompt: str = "auto"):
        if tok.eos_token_id is None:
            raise TextError("the tokenizer has no EOS token, so episodes could never end; set tokenizer.eos_token")
        self.tok = tok
        self.eos_id = int(tok.eos_token_id)
        self.pad_id = int(tok.pad_token_id) if tok.pad_token_id is not None else self.eos_id
        self.bos_id = int(tok.bos_token_id) if tok.bos_token_id is not None else self.eos_id
        self.sep_id = self.bos_id
        self._vocab_size = int(vocab_size)
        self.use_chat = chat_template == "auto" and bool(getattr(tok, "chat_template", None))
        # "auto": the template's own system turn; "none": an empty one; other text: that text
        text = "" if system_prompt == "none" else system_prompt
        self.system = [] if system_prompt == "auto" else [{"role": "system", "content": text}]
        self._special = set(tok.all_special_ids)
        self._pieces: list[str] | None = None

    @classmethod
    def load(cls, path: str, vocab_size: int, chat_template: str = "auto", system_prompt: str = "auto") -> HFTokenizer:
        from transformers import AutoTokenizer

        file = Path(path)
        where = {"gguf_file": file.name} if path.endswith(".gguf") else {}  # a GGUF file holds its tokenizer too
        try:
            tok = AutoTokenizer.from_pretrained(file.parent if where else path, **where)
        except (OSError, ValueError) as err:
            reason = str(err).strip().splitlines()[0][:160]
            raise TextError(f"cannot load a tokenizer from {path} ({reason})") from None
        return cls(tok, vocab_size, chat_template, system_prompt)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def encode_prompt(self, text: str | list[dict]) -> list[int]:
        """A user prompt's ids: through the chat template (generation prompt added) when it has one, else the text
        after the tokenizer's BOS, if it has one, so that every prompt has at least one token. Chat messages
        ([{"role": ..., "content": ...}, ...]) go through the template as they are, the system turn added where
        they have none."""
        if not isinstance(text, str):
            if not self.use_chat:
                raise TextError("chat messages need a tokenizer with a chat template (and hf.chat_template=auto)")
            system = [] if any(m["role"] == "system" for m in text) else self.system
            return list(
                self.tok.apply_chat_template(
                    [*system, *text], add_generation_prompt=True, tokenize=True, return_dict=False
                )
            )
        if self.use_chat:
            return list(
                self.tok.apply_chat_template(
                    [*self.system, {"role": "user", "content": text}],
                    add_generation_prompt=True,
                    tokenize=True,
                    return_dict=False,
                )
            )
        ids = self.encode(text)
        bos = self.tok.bos_token_id
        return ([bos] if bos is not None and ids[:1] != [bos] else []) + ids

    def shared_prefix(self) -> list[int]:
        """The ids every prompt starts with: the chat template's system turn and the user turn's opening, as far as
        two different prompts agree (none without a chat template). The Q-network caches its keys and values once."""
        if not self.use_chat:
            return []
        a, b = self.encode_prompt("x"), self.encode_prompt("y")
        n = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), min(len(a), len(b)))
        return a[:n]

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        return self.tok.decode([int(i) for i in ids if int(i) >= 0], skip_special_tokens=skip_special)

    def pieces(self) -> list[str]:
        """The text of every token id alone ("" for special tokens and ids past the tokenizer): what a reward
        over token text (a banned letter) reads."""
        if self._pieces is None:
            n = len(self.tok)
            texts = self.tok.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
            self._pieces = ["" if i in self._special or i >= n else texts[i] for i in range(self._vocab_size)]
        return self._pieces

    def save_pretrained(self, directory: Path) -> None:
        """The tokenizer's files, as transformers writes them."""
        self.tok.save_pretrained(directory)

    def fingerprint(self) -> str:
        vocab = sorted(self.tok.get_vocab().items(), key=lambda kv: kv[1])
        return hashlib.sha256("\n".join(k for k, _ in vocab).encode()).hexdigest()[:16]


def pad_prompts(rows: Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
    """(N, width) int64 prompt ids, right-padded with PROMPT_PAD."""
    width = width or max(len(r) for r in rows)
    out = np.full((len(rows), width), PROMPT_PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out
